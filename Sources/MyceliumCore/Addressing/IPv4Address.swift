/// An IPv4 address. Mycelium never routes IPv4, but its TLV codecs can carry it (AE 1).
public struct IPv4Address: Hashable, Sendable {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init<C: Collection<UInt8>>(bytes: C) {
        precondition(bytes.count >= 4, "IPv4Address needs 4 bytes")
        self.value = bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    public func masked(to prefixLength: Int) -> IPv4Address {
        if prefixLength <= 0 { return IPv4Address(0) }
        if prefixLength >= 32 { return self }
        return IPv4Address(value & ~(UInt32.max >> UInt32(prefixLength)))
    }
}

extension IPv4Address: CustomStringConvertible, LosslessStringConvertible {
    public var description: String { bytes.map { String($0) }.joined(separator: ".") }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard (1...3).contains(p.utf8.count), p.utf8.allSatisfy({ (48...57).contains($0) }),
                  let octet = UInt8(p), !(p.utf8.count > 1 && p.hasPrefix("0")) else { return nil }
            v = v << 8 | UInt32(octet)
        }
        self.value = v
    }
}

/// Either address family, as TLVs may carry.
public enum IPAddress: Hashable, Sendable {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public var maxPrefixLength: Int {
        switch self {
        case .v4: 32
        case .v6: 128
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case let .v4(a): a.bytes
        case let .v6(a): a.bytes
        }
    }

    public func masked(to prefixLength: Int) -> IPAddress {
        switch self {
        case let .v4(a): .v4(a.masked(to: prefixLength))
        case let .v6(a): .v6(a.masked(to: prefixLength))
        }
    }
}

extension IPAddress: CustomStringConvertible, LosslessStringConvertible {
    public var description: String {
        switch self {
        case let .v4(a): a.description
        case let .v6(a): a.description
        }
    }

    public init?(_ text: String) {
        if let v6 = IPv6Address(text) {
            self = .v6(v6)
        } else if let v4 = IPv4Address(text) {
            self = .v4(v4)
        } else {
            return nil
        }
    }
}

/// An IP prefix: an address with its host bits cleared and a prefix length.
///
/// Construction always masks, so two subnets are equal exactly when they cover the same range.
public struct Subnet: Hashable, Sendable, Comparable {
    public let address: IPAddress
    public let prefixLength: UInt8

    /// Nil when `prefixLength` exceeds the family's width.
    public init?(address: IPAddress, prefixLength: UInt8) {
        guard Int(prefixLength) <= address.maxPrefixLength else { return nil }
        self.address = address.masked(to: Int(prefixLength))
        self.prefixLength = prefixLength
    }

    /// One word into the hasher: routing tables hash subnets on every Update.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(hashWord)
    }

    /// The subnet folded into one word (not a hash by itself: tables mix it with a secret).
    public var hashWord: UInt64 {
        switch address {
        case let .v6(a): a.high &+ (a.low &* 0x9E37_79B9_7F4A_7C15) &+ UInt64(prefixLength) << 1
        case let .v4(a): UInt64(a.value) << 8 | UInt64(prefixLength) | 1 << 63
        }
    }

    /// IPv4 before IPv6, then by address, then by prefix length: a stable order for output.
    public static func < (a: Subnet, b: Subnet) -> Bool {
        switch (a.address, b.address) {
        case let (.v4(x), .v4(y)): (x.value, a.prefixLength) < (y.value, b.prefixLength)
        case let (.v6(x), .v6(y)): (x, a.prefixLength) < (y, b.prefixLength)
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

    public init?(_ address: IPv6Address, prefixLength: UInt8) {
        self.init(address: .v6(address), prefixLength: prefixLength)
    }

    /// The overlay range every Mycelium address lives in.
    public static let overlay = Subnet(IPv6Address(high: 0x0400_0000_0000_0000, low: 0), prefixLength: 7)!

    /// The /64 containing `address`.
    public static func slash64(of address: IPv6Address) -> Subnet {
        Subnet(address, prefixLength: 64)!
    }

    public var ipv6: IPv6Address? {
        if case let .v6(a) = address { return a }
        return nil
    }

    public func contains(_ ip: IPAddress) -> Bool {
        switch (address, ip) {
        case let (.v6(net), .v6(a)): a.masked(to: Int(prefixLength)) == net
        case let (.v4(net), .v4(a)): a.masked(to: Int(prefixLength)) == net
        default: false
        }
    }

    public func contains(_ ip: IPv6Address) -> Bool { contains(.v6(ip)) }

    /// True when every address of `other` is inside this subnet.
    public func contains(_ other: Subnet) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }
}

extension Subnet: CustomStringConvertible, LosslessStringConvertible {
    public var description: String { "\(address)/\(prefixLength)" }

    /// Parses `addr/len`; host bits are cleared. A bare address is a host prefix (/32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 2 {
            guard parts[1].utf8.count <= 3, parts[1].utf8.allSatisfy({ (48...57).contains($0) }),
                  let plen = UInt8(parts[1]) else { return nil }
            self.init(address: address, prefixLength: plen)
        } else {
            self.init(address: address, prefixLength: UInt8(address.maxPrefixLength))
        }
    }
}

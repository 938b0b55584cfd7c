/// An IPv6 address as two big-endian 64-bit halves: `high` is the /64 network part.
///
/// Kept as two integers so /64 lookups and prefix masks are single operations on the hot path.
public struct IPv6Address: Hashable, Sendable, Comparable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static let zero = IPv6Address(high: 0, low: 0)

    /// The first 16 bytes of `bytes` (network order). Precondition: at least 16 bytes.
    public init<C: Collection<UInt8>>(bytes: C) {
        precondition(bytes.count >= 16, "IPv6Address needs 16 bytes")
        // Contiguous bytes (arrays, slices: every packet's header): two loads.
        if let words = bytes.withContiguousStorageIfAvailable({ b in
            let raw = UnsafeRawBufferPointer(b)
            return (UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }) {
            self.init(high: words.0, low: words.1)
            return
        }
        var h: UInt64 = 0
        var l: UInt64 = 0
        var i = 0
        for b in bytes.prefix(16) {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
            i += 1
        }
        self.init(high: h, low: l)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        append(to: &out)
        return out
    }

    public func append(to out: inout [UInt8]) {
        out.appendU64(high)
        out.appendU64(low)
    }

    /// Byte `index` (0..<16) in network order.
    public subscript(byte index: Int) -> UInt8 {
        let word = index < 8 ? high : low
        return UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * (index % 8)))
    }

    /// The 16-bit groups, most significant first.
    public var groups: [UInt16] {
        (0..<8).map { i in
            let word = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (i % 4)))
        }
    }

    /// This address with every bit after the first `prefixLength` cleared.
    public func masked(to prefixLength: Int) -> IPv6Address {
        switch prefixLength {
        case ...0: return .zero
        case 1..<64: return IPv6Address(high: high & ~(UInt64.max >> UInt64(prefixLength)), low: 0)
        case 64: return IPv6Address(high: high, low: 0)
        case 65..<128: return IPv6Address(high: high, low: low & ~(UInt64.max >> UInt64(prefixLength - 64)))
        default: return self
        }
    }

    public var isLinkLocal: Bool { high >> 54 == 0x3FA }  // fe80::/10

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }
}

extension IPv6Address: CustomStringConvertible, LosslessStringConvertible {
    /// RFC 5952 text: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as `::`.
    /// IPv4-mapped addresses are printed as `::ffff:a.b.c.d`, as Rust's `Ipv6Addr` does.
    public var description: String {
        let g = groups
        if high == 0, low >> 32 == 0xFFFF {
            return "::ffff:" + IPv4Address(UInt32(truncatingIfNeeded: low)).description
        }
        var bestStart = -1, bestLen = 0, runStart = -1
        for i in 0...8 {
            if i < 8, g[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLen { bestStart = runStart; bestLen = i - runStart }
                runStart = -1
            }
        }
        if bestLen < 2 { bestStart = -1 }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLen
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(g[i], radix: 16)
            i += 1
        }
        return text
    }

    /// Parses RFC 4291 text forms, including `::` compression and a trailing dotted IPv4 part.
    public init?(_ text: String) {
        guard let parsed = IPv6Address.parse(Substring(text)) else { return nil }
        self = parsed
    }

    static func parse(_ text: Substring) -> IPv6Address? {
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        let halves = text.split(separator: "::", maxSplits: 2, omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt16] = []
            for (index, item) in items.enumerated() {
                if index == items.count - 1, allowIPv4Tail, item.contains(".") {
                    guard let v4 = IPv4Address(String(item)) else { return nil }
                    out.append(UInt16(v4.value >> 16))
                    out.append(UInt16(v4.value & 0xFFFF))
                } else {
                    guard (1...4).contains(item.utf8.count), let v = UInt16(item, radix: 16) else { return nil }
                    out.append(v)
                }
            }
            return out
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowIPv4Tail: false),
                  let tail = groups(halves[1], allowIPv4Tail: true),
                  head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], allowIPv4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(all[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(all[i]) }
        return IPv6Address(high: h, low: l)
    }
}

/// The Internet checksum (RFC 1071): the ones'-complement sum of big-endian 16-bit words.
///
/// Sums are kept unfolded in a `UInt64` with end-around carry, so they can be chained
/// (`sum(b, initial: sum(a))` for an even-length `a`) and folded once at the end; `2^64 ≡ 1`
/// modulo `0xFFFF`, so the carry keeps every step exact.
public enum InternetChecksum {
    /// Ones'-complement addition of two unfolded sums.
    @inline(__always)
    static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, carry) = a.addingReportingOverflow(b)
        return s &+ (carry ? 1 : 0)
    }

    /// `initial` plus the bytes read as big-endian 16-bit words, an odd last byte padded with
    /// zero. The bytes may start at any address.
    ///
    /// Words are added in memory order, 8 bytes at a time: the ones'-complement sum of
    /// byte-swapped words is the byte-swapped sum (RFC 1071 §2(B)), so a single swap at the
    /// end serves every host.
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        guard let base = bytes.baseAddress else { return initial }
        let n = bytes.count
        // Two accumulators of 32-bit halves never carry (each gains < 2^32 per 8 bytes, and a
        // packet is far below 2^32 words), which lets the loop run without carry chains.
        var low: UInt64 = 0, high: UInt64 = 0
        var i = 0
        while i &+ 32 <= n {
            let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self)
            low &+= (a & 0xFFFF_FFFF) &+ (b & 0xFFFF_FFFF) &+ (c & 0xFFFF_FFFF) &+ (d & 0xFFFF_FFFF)
            high &+= (a >> 32) &+ (b >> 32) &+ (c >> 32) &+ (d >> 32)
            i &+= 32
        }
        while i &+ 8 <= n {
            let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            low &+= a & 0xFFFF_FFFF
            high &+= a >> 32
            i &+= 8
        }
        if i < n {
            // The tail, zero-padded in memory: the pad is the odd byte's zero partner.
            var tail: UInt64 = 0
            withUnsafeMutableBytes(of: &tail) { $0.copyMemory(from: UnsafeRawBufferPointer(start: base + i, count: n &- i)) }
            low &+= tail & 0xFFFF_FFFF
            high &+= tail >> 32
        }
        return add(initial, UInt64(UInt16(bigEndian: fold(add(low, high)))))
    }

    /// An unfolded sum reduced to 16 bits (not complemented): the value a CHECKSUM_PARTIAL
    /// packet carries in its checksum field.
    public static func fold(_ sum: UInt64) -> UInt16 {
        var s = (sum & 0xFFFF_FFFF) &+ (sum >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// The RFC 8200 §8.1 pseudo-header: source and destination (the 32 bytes of `addresses`,
    /// as they sit at offset 8 of an IPv6 header), the 32-bit upper-layer length, the next header.
    public static func pseudoHeaderSum(addresses: UnsafeRawBufferPointer, upperLayerLength: Int,
                                       nextHeader: UInt8) -> UInt64 {
        let length = UInt64(truncatingIfNeeded: upperLayerLength) & 0xFFFF_FFFF
        return sum(addresses, initial: (length >> 16) &+ (length & 0xFFFF) &+ UInt64(nextHeader))
    }

    /// True if the upper-layer checksum of an IPv6 packet without extension headers verifies:
    /// the payload (from byte 40, checksum field included) plus the pseudo-header sums to
    /// 0xFFFF. False if the packet is not IPv6 or its payload length field disagrees with its size.
    public static func verifyIPv6(_ packet: UnsafeRawBufferPointer) -> Bool {
        let header = IPv6Header.length
        guard packet.count >= header, packet[0] >> 4 == 6,
              Int(packet[IPv6Offsets.payloadLength]) << 8 | Int(packet[IPv6Offsets.payloadLength + 1]) == packet.count - header
        else { return false }
        let pseudo = pseudoHeaderSum(addresses: UnsafeRawBufferPointer(rebasing: packet[IPv6Offsets.addresses..<header]),
                                     upperLayerLength: packet.count - header, nextHeader: packet[IPv6Offsets.nextHeader])
        return fold(sum(UnsafeRawBufferPointer(rebasing: packet[header...]), initial: pseudo)) == 0xFFFF
    }
}

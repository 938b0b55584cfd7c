/// A node's X25519 public key: its identity on the overlay.
///
/// Stored as four words so that comparing and hashing keys (routing tables key on them) never
/// touches the heap.
public struct PublicKey: Hashable, Sendable {
    public static let length = 32
    private var w0, w1, w2, w3: UInt64

    /// Nil unless exactly 32 bytes.
    public init?<C: Collection<UInt8>>(bytes: C) {
        guard bytes.count == PublicKey.length else { return nil }
        var words = [UInt64](repeating: 0, count: 4)
        for (i, b) in bytes.enumerated() { words[i / 8] = words[i / 8] << 8 | UInt64(b) }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// Keys are uniformly random: one mixed word hashes as well as all four, at a quarter of the cost.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0 ^ (w1 &* 0x9E37_79B9_7F4A_7C15) ^ w2 ^ w3)
    }

    /// Parses 64 hex characters.
    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 64, let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        append(to: &out)
        return out
    }

    public func append(to out: inout [UInt8]) {
        out.appendU64(w0); out.appendU64(w1); out.appendU64(w2); out.appendU64(w3)
    }

    public var hex: String { Hex.encode(bytes) }

    /// The overlay address owned by this key (spec §1.2):
    /// BLAKE3(key)[0..<16] with byte 0 replaced by `0x04 | parity(popcount(byte 0))`.
    public var overlayAddress: IPv6Address {
        // The key as BLAKE3's little-endian block words (each stored word holds 8 bytes big-endian).
        func le(_ w: UInt64) -> (UInt32, UInt32) { (UInt32(truncatingIfNeeded: w >> 32).byteSwapped, UInt32(truncatingIfNeeded: w).byteSwapped) }
        let (a0, a1) = le(w0), (b0, b1) = le(w1), (c0, c1) = le(w2), (d0, d1) = le(w3)
        let h = BLAKE3.hash32(words: SIMD8(a0, a1, b0, b1, c0, c1, d0, d1))
        // Back to bytes in order: each output word is little-endian.
        var high = UInt64(h[0].byteSwapped) << 32 | UInt64(h[1].byteSwapped)
        let low = UInt64(h[2].byteSwapped) << 32 | UInt64(h[3].byteSwapped)
        let first = UInt8(truncatingIfNeeded: high >> 56)
        high = high & 0x00FF_FFFF_FFFF_FFFF | UInt64(0x04 | UInt8(first.nonzeroBitCount & 1)) << 56
        return IPv6Address(high: high, low: low)
    }

    /// The /64 this key may announce.
    public var subnet: Subnet { Subnet.slash64(of: overlayAddress) }
}

extension PublicKey: CustomStringConvertible {
    public var description: String { hex }
}

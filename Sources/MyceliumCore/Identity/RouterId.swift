/// The 40-byte router id carried in Updates and SeqNoRequests (spec §1.4).
///
/// ```
/// 0        32     34                40
/// +--------+------+------------------+
/// | pubkey | zone | random (6 bytes) |
/// +--------+------+------------------+
/// ```
/// The random part is drawn at every process start, so a restarted node is a new router and
/// its sequence number may start again at 0 without tripping old feasibility state.
public struct RouterId: Hashable, Sendable {
    public static let length = 40
    public static let randomMask: UInt64 = 0xFFFF_FFFF_FFFF

    public let publicKey: PublicKey
    /// Zone (high 16 bits) and random part (low 48) in one word: 40 bytes a router id, not 48
    /// with the padding of two fields (a 1000-node simulation holds millions); a route entry,
    /// whose key is its subnet's owner, stores only this word.
    public let tail: UInt64

    public var zone: UInt16 { UInt16(truncatingIfNeeded: tail >> 48) }
    /// Only the low 48 bits are used.
    public var random: UInt64 { tail & RouterId.randomMask }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(publicKey)
        hasher.combine(tail)
    }

    public init(publicKey: PublicKey, zone: UInt16 = 0, random: UInt64) {
        self.publicKey = publicKey
        self.tail = UInt64(zone) << 48 | random & RouterId.randomMask
    }

    /// From a public key and the other word of a router id (`tail`), as tables that know the
    /// key store only the word.
    public init(publicKey: PublicKey, tail: UInt64) {
        self.publicKey = publicKey
        self.tail = tail
    }

    /// From 6 random bytes (as drawn by the caller's RNG).
    public init(publicKey: PublicKey, randomBytes: some Collection<UInt8>) {
        precondition(randomBytes.count == 6)
        self.init(publicKey: publicKey, random: randomBytes.reduce(0) { $0 << 8 | UInt64($1) })
    }

    public init(reading reader: inout WireReader) throws(WireError) {
        guard let key = PublicKey(bytes: try reader.take(32)) else { throw .truncated(needed: 32, available: 0) }
        self.publicKey = key
        var t = UInt64(try reader.u16())
        for _ in 0..<6 { t = t << 8 | UInt64(try reader.u8()) }
        self.tail = t
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == RouterId.length else { return nil }
        var reader = WireReader(bytes)
        guard let id = try? RouterId(reading: &reader) else { return nil }
        self = id
    }

    public func append(to out: inout [UInt8]) {
        publicKey.append(to: &out)
        out.appendU16(zone)
        for shift in stride(from: 40, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: random >> UInt64(shift))) }
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(RouterId.length)
        append(to: &out)
        return out
    }
}

extension RouterId: CustomStringConvertible, LosslessStringConvertible {
    /// `<64 hex pubkey>-<4 hex zone>-<12 hex random>`.
    public var description: String {
        let b = bytes
        return Hex.encode(b[0..<32]) + "-" + Hex.encode(b[32..<34]) + "-" + Hex.encode(b[34..<40])
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].utf8.count == 64, parts[1].utf8.count == 4, parts[2].utf8.count == 12,
              let key = Hex.decode(parts[0]), let zone = Hex.decode(parts[1]), let rnd = Hex.decode(parts[2]) else { return nil }
        self.init(bytes: key + zone + rnd)
    }
}

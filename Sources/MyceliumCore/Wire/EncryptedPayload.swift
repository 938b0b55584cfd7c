/// The encrypted payload of a data packet (spec §4.2) and the user header inside it.
///
/// On the wire (the data packet's payload):
/// ```
/// +----------------------------------+----------+------------+
/// | ciphertext (= plaintext length)  | tag (16) | nonce (12) |
/// +----------------------------------+----------+------------+
/// ```
/// AES-256-GCM, key = raw X25519 shared secret, empty AAD. Note the nonce comes *last*.
/// The plaintext starts with the 4-byte user header:
/// ```
/// 0         1      2          4
/// +---------+------+----------+---------+
/// | version | type | reserved | content |
/// |   = 1   |      |  (any)   |         |
/// +---------+------+----------+---------+
/// ```
public enum EncryptedPayload {
    public static let tagLength = 16
    public static let nonceLength = 12
    public static let overhead = tagLength + nonceLength
    /// A valid payload holds at least the user header: 4 + 16 + 12.
    public static let minimumLength = UserHeader.length + overhead

    /// Spare capacity that lets a packet be sealed in its own array (user header in front,
    /// tag and nonce behind) without growing it.
    public static let sealRoom = UserHeader.length + overhead

    /// A copy of `bytes` with `sealRoom` spare capacity, in an array from `pool` if given: a
    /// packet read from the TUN, sealed in place and framed from there.
    public static func sealable(_ bytes: UnsafeRawBufferPointer, pool: PacketPool? = nil) -> [UInt8] {
        if let pool { return pool.copy(bytes, room: sealRoom) }
        return [UInt8](unsafeUninitializedCapacity: bytes.count + sealRoom) { out, count in
            UnsafeMutableRawBufferPointer(out).copyMemory(from: bytes)
            count = bytes.count
        }
    }

    /// Ranges of ciphertext, tag and nonce within a payload of `count` bytes.
    public static func layout(count: Int) throws(WireError) -> (ciphertext: Range<Int>, tag: Range<Int>, nonce: Range<Int>) {
        guard count >= minimumLength else { throw .truncated(needed: minimumLength, available: count) }
        let tagStart = count - overhead
        return (0..<tagStart, tagStart..<(tagStart + tagLength), (count - nonceLength)..<count)
    }
}

/// The 4-byte header at the start of every decrypted payload.
public struct UserHeader: Hashable, Sendable {
    public static let length = 4
    public static let version: UInt8 = 1

    public enum PayloadType: UInt8, Sendable {
        /// A raw IPv6 packet for the TUN.
        case ipv6 = 0
        /// A message-bus packet (§7).
        case message = 1
        /// An out-of-band ICMP report (§4.6).
        case outOfBandICMP = 2
        /// Session handshake, first message, static-sealed (docs/sessions.md; Rust drops it).
        case sessionInit = 0x10
        /// Session handshake, answer, static-sealed.
        case sessionResponse = 0x11
        /// Session-sealed, empty: the initiator's first packet, which confirms the session.
        case sessionConfirm = 0x12
    }

    public var type: PayloadType

    public init(type: PayloadType) { self.type = type }

    /// Byte 0 must be 1 and byte 1 a known type; bytes 2–3 are not checked (as in Rust).
    public init<C: Collection<UInt8>>(decoding bytes: C) throws(WireError) where C.Index == Int {
        guard bytes.count >= UserHeader.length else { throw .truncated(needed: UserHeader.length, available: bytes.count) }
        let first = bytes.startIndex
        guard bytes[first] == UserHeader.version else { throw .unsupportedVersion(bytes[first]) }
        guard let type = PayloadType(rawValue: bytes[first + 1]) else { throw .invalidField("user header type \(bytes[first + 1])") }
        self.type = type
    }

    /// The same from raw bytes: the datapath's path. Not generic, so no collection access
    /// through a protocol witness (each of which allocated a coroutine frame, twice per packet).
    public init(decoding bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard bytes.count >= UserHeader.length else { throw .truncated(needed: UserHeader.length, available: bytes.count) }
        guard bytes[0] == UserHeader.version else { throw .unsupportedVersion(bytes[0]) }
        guard let type = PayloadType(rawValue: bytes[1]) else { throw .invalidField("user header type \(bytes[1])") }
        self.type = type
    }

    public var bytes: [UInt8] { [UserHeader.version, type.rawValue, 0, 0] }
}

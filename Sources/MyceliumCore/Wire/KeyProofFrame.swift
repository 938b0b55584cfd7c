/// Key proof frame: outer packet type 2, ours (Rust Mycelium has no such frame and drops a
/// connection that sends one). Only a dialler that pins its peer's key sends a challenge, and
/// every Swift node answers one; the proof itself is in `MyceliumCrypto.KeyProof` and
/// docs/security.md ("Pinned peer keys").
///
/// Body, fixed 66 bytes after the 4-byte outer header `01 02 00 00`:
/// ```
/// 0      1          2                 34                66
/// +------+----------+-----------------+-----------------+
/// | kind | reserved | key (32)        | value (32)      |
/// |      |  = 0     |                 |                 |
/// +------+----------+-----------------+-----------------+
/// kind 1, challenge: key = the dialler's ephemeral X25519 public key, value = a random nonce
/// kind 2, proof:     key = the answerer's static X25519 public key,   value = the MAC
/// ```
public struct KeyProofFrame: Hashable, Sendable {
    public static let bodyLength = 66
    public static let valueLength = 32

    public enum Kind: UInt8, Sendable {
        case challenge = 1
        case proof = 2
    }

    public var kind: Kind
    public var key: PublicKey
    /// Nonce (challenge) or MAC (proof), 32 bytes.
    public var value: [UInt8]

    public init(kind: Kind, key: PublicKey, value: [UInt8]) {
        precondition(value.count == Self.valueLength, "a key proof value is 32 bytes")
        self.kind = kind
        self.key = key
        self.value = value
    }

    /// Reads the 66-byte body. A frame of the right length with a bad field is rejected whole,
    /// so the stream stays in sync.
    public init(reading reader: inout WireReader) throws(WireError) {
        let kindByte = try reader.u8()
        let reserved = try reader.u8()
        let keyBytes = try reader.take(PublicKey.length)
        let value = try reader.take(Self.valueLength)
        guard let kind = Kind(rawValue: kindByte) else { throw .invalidField("key proof kind \(kindByte)") }
        guard reserved == 0 else { throw .invalidField("key proof reserved byte \(reserved)") }
        self.kind = kind
        self.key = PublicKey(bytes: keyBytes)!
        self.value = Array(value)
    }

    func write(to out: inout [UInt8]) {
        out.append(kind.rawValue)
        out.append(0)
        key.append(to: &out)
        out += value
    }
}

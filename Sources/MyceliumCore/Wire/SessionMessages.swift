/// The handshake of a session between two of our nodes (docs/sessions.md), carried as user-data
/// types a Rust node drops without a word (spec §4.2: unknown type → drop).
///
/// `SessionInit` (user type 0x10) and `SessionResponse` (0x11) travel sealed with the *static*
/// key of the two nodes (so only the holders of those keys can make or read them); every later
/// packet of the session is sealed with a session key and a counter nonce:
/// ```
/// SessionInit, 48 bytes
/// 0         1          4                 8                    16                         48
/// +---------+----------+-----------------+--------------------+--------------------------+
/// | ver = 1 | reserved | initiator index | timestamp (u64 ms) | initiator ephemeral (32) |
/// +---------+----------+-----------------+--------------------+--------------------------+
///
/// SessionResponse, 44 bytes
/// 0         1          4                 8                 12                         44
/// +---------+----------+-----------------+-----------------+--------------------------+
/// | ver = 1 | reserved | responder index | initiator index | responder ephemeral (32) |
/// +---------+----------+-----------------+-----------------+--------------------------+
///
/// Session data payload (any user type; `SessionConfirm` = 0x12 with an empty body)
/// +----------------------------------+----------+------------------------------------------+
/// | ciphertext (user header ‖ body)  | tag (16) | nonce = receiver index (4) ‖ counter (8) |
/// +----------------------------------+----------+------------------------------------------+
/// ```
/// Integers are big-endian; reserved bytes are sent as 0 and not checked; the lengths are exact. The index is chosen
/// by the node that *receives* under it; the timestamp is wall-clock milliseconds, strictly
/// increasing per initiator (a replayed or stale Init is refused).
public struct SessionInit: Hashable, Sendable {
    public static let length = 48
    public static let version: UInt8 = 1

    public var initiatorIndex: UInt32
    public var timestamp: UInt64
    public var ephemeral: PublicKey

    public init(initiatorIndex: UInt32, timestamp: UInt64, ephemeral: PublicKey) {
        self.initiatorIndex = initiatorIndex
        self.timestamp = timestamp
        self.ephemeral = ephemeral
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        guard bytes.count >= Self.length else { throw .truncated(needed: Self.length, available: bytes.count) }
        guard bytes.count == Self.length else { throw .invalidField("session init of \(bytes.count) bytes") }
        guard bytes[0] == Self.version else { throw .unsupportedVersion(bytes[0]) }
        var r = WireReader(bytes, start: 4, end: Self.length)
        initiatorIndex = try r.u32()
        timestamp = try r.u64()
        ephemeral = PublicKey(bytes: r.rest())!
    }

    public func encode() -> [UInt8] {
        var out: [UInt8] = [Self.version, 0, 0, 0]
        out.reserveCapacity(Self.length)
        out.appendU32(initiatorIndex)
        out.appendU64(timestamp)
        out += ephemeral.bytes
        return out
    }
}

public struct SessionResponse: Hashable, Sendable {
    public static let length = 44

    public var responderIndex: UInt32
    public var initiatorIndex: UInt32
    public var ephemeral: PublicKey

    public init(responderIndex: UInt32, initiatorIndex: UInt32, ephemeral: PublicKey) {
        self.responderIndex = responderIndex
        self.initiatorIndex = initiatorIndex
        self.ephemeral = ephemeral
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        guard bytes.count >= Self.length else { throw .truncated(needed: Self.length, available: bytes.count) }
        guard bytes.count == Self.length else { throw .invalidField("session response of \(bytes.count) bytes") }
        guard bytes[0] == SessionInit.version else { throw .unsupportedVersion(bytes[0]) }
        var r = WireReader(bytes, start: 4, end: Self.length)
        responderIndex = try r.u32()
        initiatorIndex = try r.u32()
        ephemeral = PublicKey(bytes: r.rest())!
    }

    public func encode() -> [UInt8] {
        var out: [UInt8] = [SessionInit.version, 0, 0, 0]
        out.reserveCapacity(Self.length)
        out.appendU32(responderIndex)
        out.appendU32(initiatorIndex)
        out += ephemeral.bytes
        return out
    }
}

/// The receiver index and counter of a session-sealed payload's nonce (its last 12 bytes).
public enum SessionWire {
    public static func nonce(of payload: [UInt8]) -> (index: UInt32, counter: UInt64)? {
        guard payload.count >= EncryptedPayload.minimumLength else { return nil }
        var r = WireReader(payload, start: payload.count - EncryptedPayload.nonceLength, end: payload.count)
        guard let index = try? r.u32(), let counter = try? r.u64() else { return nil }
        return (index, counter)
    }
}

import CSodium
public import MyceliumCore

/// A node's X25519 static secret: the 32 raw bytes of `priv_key.bin` (spec §1.1).
///
/// The bytes are stored unclamped, as Rust's `StaticSecret` does; clamping happens inside the
/// scalar multiplication. The buffer is wiped when the last copy goes away.
/// `@unchecked Sendable`: the buffer is written once in `init` and only read afterwards.
public final class SecretKey: @unchecked Sendable {
    public static let length = 32
    private let storage: UnsafeMutableRawBufferPointer

    /// Nil unless exactly 32 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == SecretKey.length else { return nil }
        storage = .allocate(byteCount: SecretKey.length, alignment: 16)
        storage.copyBytes(from: bytes)
    }

    /// A fresh random key, drawn straight into its own buffer (no copy left behind to wipe).
    public static func generate() -> SecretKey {
        SecretKey()
    }

    private init() {
        Sodium.ensureReady()
        storage = .allocate(byteCount: SecretKey.length, alignment: 16)
        randombytes_buf(storage.baseAddress!, SecretKey.length)
    }

    deinit {
        sodium_memzero(storage.baseAddress!, storage.count)
        storage.deallocate()
    }

    private var secretPointer: UnsafePointer<UInt8> {
        UnsafePointer(storage.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// A 32-byte key for another purpose, derived from this one (BLAKE3 key derivation under a
    /// context naming the purpose): stable across restarts, revealing nothing of this key.
    public func derivedKey(context: String) -> [UInt8] {
        var derive = BLAKE3(deriveKeyContext: context)
        derive.update(buffer: UnsafeRawBufferPointer(storage))
        return derive.finalize()
    }

    /// Raw secret bytes, for writing the key file only.
    public var rawBytes: [UInt8] { Array(storage) }

    /// X25519 base-point multiplication (RFC 7748).
    public var publicKey: PublicKey {
        Sodium.ensureReady()
        var pk = [UInt8](repeating: 0, count: 32)
        let rc = pk.withUnsafeMutableBufferPointer { out in
            crypto_scalarmult_base(out.baseAddress!, secretPointer)
        }
        precondition(rc == 0, "crypto_scalarmult_base failed")
        return PublicKey(bytes: pk)!
    }

    /// X25519(self, peer) written into `out` (32 bytes); false for a low-order peer key.
    public func sharedSecret(with peer: PublicKey, into out: UnsafeMutableRawBufferPointer) -> Bool {
        precondition(out.count >= 32, "an X25519 result needs 32 bytes")
        Sodium.ensureReady()
        let peerBytes = peer.bytes
        return peerBytes.withUnsafeBufferPointer { p in
            crypto_scalarmult(out.baseAddress!.assumingMemoryBound(to: UInt8.self), secretPointer, p.baseAddress!)
        } == 0
    }

    /// X25519(self, peer): the raw 32 bytes Mycelium uses directly as the AES-256-GCM key.
    /// Nil for a low-order peer key (the result would be all zeros).
    public func sharedSecret(with peer: PublicKey) -> [UInt8]? {
        Sodium.ensureReady()
        let peerBytes = peer.bytes
        var out = [UInt8](repeating: 0, count: 32)
        let rc = out.withUnsafeMutableBufferPointer { o in
            peerBytes.withUnsafeBufferPointer { p in
                crypto_scalarmult(o.baseAddress!, secretPointer, p.baseAddress!)
            }
        }
        return rc == 0 ? out : nil
    }
}

/// Everything a node derives from its secret key.
public struct NodeIdentity: Sendable {
    public let secretKey: SecretKey
    public let publicKey: PublicKey
    public let address: IPv6Address
    public let subnet: Subnet

    public init(secretKey: SecretKey) {
        self.secretKey = secretKey
        self.publicKey = secretKey.publicKey
        self.address = publicKey.overlayAddress
        self.subnet = publicKey.subnet
    }

    /// A router id for this process start: fresh random 6 bytes each call.
    public func makeRouterId() -> RouterId {
        RouterId(publicKey: publicKey, randomBytes: SecureRandom.bytes(6))
    }
}

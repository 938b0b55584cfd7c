import CSodium
public import MyceliumCore

/// Proof that a peer holds the X25519 key pinned in its endpoint (`?key=`).
///
/// X25519 keys cannot sign, so the proof is a Diffie-Hellman challenge, as a Noise handshake
/// authenticates a static key:
///
///     dialler  → challenge: E = X25519(e, G) (fresh e), nonce N (32 random bytes)
///     answerer → proof:     P (its static key), T = MAC(K, E ‖ P ‖ N ‖ len(B) ‖ B)
///                           K = BLAKE3-derive-key(context, X25519(p, E))
///
/// The dialler computes X25519(e, P_pinned) and checks T. Only a holder of p (or of e, which
/// never leaves the dialler) computes K, so a correct T for the pinned P proves the key, and N
/// and E make each proof fresh. B is the channel binding: a TLS exporter value (RFC 5705) of
/// the QUIC or TLS-PSK session, empty on plain TCP. With B, a proof made for one session does
/// not verify on another, so a relay in the middle (two TLS sessions) fails; plain TCP has no
/// session to bind to (docs/security.md says what that leaves open).
///
/// An answer reveals nothing reusable: its key is derived from X25519(p, E) under a context of
/// its own, so even when E is a third node's static key (whose raw X25519 result with p is the
/// data plane's AES key, spec §4.1) the MAC says nothing about that result. Only accepted
/// connections answer (`KeyProofHandler`); a low-order E (result all zeros) is refused.
public enum KeyProof {
    /// BLAKE3 key-derivation context (globally unique, hard-coded, as BLAKE3 asks).
    static let context = "mycelium-swift 2026-12-07 peer key proof v1"
    /// The exporter label both ends of a QUIC or TLS session use for `B`.
    public static let exporterLabel = "EXPORTER-mycelium-key-proof"
    public static let bindingLength = 32

    /// Why a proof did not verify.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The answerer holds another key (it says which; it might lie, so only diagnostic).
        case otherKey(PublicKey)
        /// The MAC is wrong: the answerer does not hold the key it names, or the session differs.
        case badProof
        /// A challenge came where a proof was expected.
        case notAProof

        public var description: String {
            switch self {
            case let .otherKey(key): "the peer answered for key \(key.hex)"
            case .badProof: "the peer's proof is not valid for the pinned key and this session"
            case .notAProof: "the peer sent a challenge instead of a proof"
            }
        }
    }

    /// A challenge sent, kept by the dialler until the proof comes.
    public struct Challenge: Sendable {
        public let pinned: PublicKey
        public let frame: KeyProofFrame
        private let ephemeral: SecretKey

        /// A fresh challenge for a peer that must prove it holds `pinned`.
        public init(pinning pinned: PublicKey) {
            self.pinned = pinned
            ephemeral = SecretKey.generate()
            frame = KeyProofFrame(kind: .challenge, key: ephemeral.publicKey, value: SecureRandom.bytes(KeyProofFrame.valueLength))
        }

        /// Checks a proof against the pinned key and this session's binding.
        public func verify(_ proof: KeyProofFrame, binding: [UInt8]) throws(Failure) {
            guard proof.kind == .proof else { throw .notAProof }
            guard proof.key == pinned else { throw .otherKey(proof.key) }
            // A pinned key of low order makes this nil: nobody can prove it.
            guard let tag = KeyProof.tag(secret: ephemeral, peer: pinned, challenge: frame, answerer: pinned, binding: binding),
                  tag.count == proof.value.count,
                  sodium_memcmp(tag, proof.value, tag.count) == 0 else { throw .badProof }
        }
    }

    /// The proof that `secret` answers to `challenge` on a session with `binding`; nil when the
    /// frame is not a challenge or its key is of low order. `publicKey`, if given, is the
    /// secret's (saves the base-point multiplication: one X25519 per answer instead of two).
    public static func answer(_ challenge: KeyProofFrame, secret: SecretKey, publicKey: PublicKey? = nil, binding: [UInt8]) -> KeyProofFrame? {
        guard challenge.kind == .challenge else { return nil }
        let own = publicKey ?? secret.publicKey
        guard let tag = tag(secret: secret, peer: challenge.key, challenge: challenge, answerer: own, binding: binding) else { return nil }
        return KeyProofFrame(kind: .proof, key: own, value: tag)
    }

    static func tag(secret: SecretKey, peer: PublicKey, challenge: KeyProofFrame, answerer: PublicKey, binding: [UInt8]) -> [UInt8]? {
        guard binding.count <= Int(UInt8.max), var shared = secret.sharedSecret(with: peer) else { return nil }
        defer { SecureMemory.wipe(&shared) }
        var derive = BLAKE3(deriveKeyContext: context)
        derive.update(shared)
        var key = derive.finalize()
        defer { SecureMemory.wipe(&key) }
        var mac = BLAKE3(key: key)
        mac.update(challenge.key.bytes)
        mac.update(answerer.bytes)
        mac.update(challenge.value)
        mac.update([UInt8(binding.count)])
        mac.update(binding)
        return mac.finalize()
    }
}

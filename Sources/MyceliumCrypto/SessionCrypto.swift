import COpenSSL
import CSodium
public import MyceliumCore

/// The key agreement of a session (docs/sessions.md §Keys): four X25519 results mixed by
/// HKDF-SHA256 into one key per direction.
///
/// ```
/// ee = X25519(e_i, E_r)   es = X25519(e_i, S_r)   se = X25519(s_i, E_r)   ss = X25519(s_i, S_r)
/// salt = SHA-256("mycelium-session-v1" ‖ S_i ‖ S_r ‖ init ‖ response)
/// okm  = HKDF-SHA256(salt, ikm = ee ‖ es ‖ se ‖ ss, info = "mycelium-session-v1 keys", 64)
/// key initiator→responder = okm[0..32], key responder→initiator = okm[32..64]
/// ```
/// `ee` needs an ephemeral secret, erased once the keys exist: a static key stolen later
/// cannot recompute them (forward secrecy). `es`/`se` bind both static keys (Noise KK).
public enum SessionCrypto {
    static let label = Array("mycelium-session-v1".utf8)
    static let info = Array("mycelium-session-v1 keys".utf8)

    /// Per-direction keys; wipe them once the ciphers are built.
    public struct Keys {
        public var initiatorToResponder: [UInt8]
        public var responderToInitiator: [UInt8]

        public mutating func wipe() {
            SecureMemory.wipe(&initiatorToResponder)
            SecureMemory.wipe(&responderToInitiator)
        }
    }

    /// The initiator's side: its static and ephemeral secrets, the responder's public keys.
    public static func initiatorKeys(staticSecret: SecretKey, ephemeral: SecretKey, initiator: PublicKey,
                                     responder: PublicKey, responderEphemeral: PublicKey,
                                     initMessage: [UInt8], responseMessage: [UInt8]) -> Keys? {
        derive([(ephemeral, responderEphemeral), (ephemeral, responder), (staticSecret, responderEphemeral), (staticSecret, responder)],
               initiator: initiator, responder: responder, initMessage: initMessage, responseMessage: responseMessage)
    }

    /// The responder's side: its static and ephemeral secrets, the initiator's public keys.
    public static func responderKeys(staticSecret: SecretKey, ephemeral: SecretKey, initiator: PublicKey,
                                     initiatorEphemeral: PublicKey, responder: PublicKey,
                                     initMessage: [UInt8], responseMessage: [UInt8]) -> Keys? {
        derive([(ephemeral, initiatorEphemeral), (staticSecret, initiatorEphemeral), (ephemeral, initiator), (staticSecret, initiator)],
               initiator: initiator, responder: responder, initMessage: initMessage, responseMessage: responseMessage)
    }

    /// `pairs` in the order ee, es, se, ss. The four results are written straight into one
    /// buffer (no intermediate arrays left unwiped) and wiped on every path.
    static func derive(_ pairs: [(SecretKey, PublicKey)], initiator: PublicKey, responder: PublicKey,
                       initMessage: [UInt8], responseMessage: [UInt8]) -> Keys? {
        var ikm = [UInt8](repeating: 0, count: 32 * pairs.count)
        defer { SecureMemory.wipe(&ikm) }
        let ok = ikm.withUnsafeMutableBytes { raw in
            pairs.indices.allSatisfy { i in
                pairs[i].0.sharedSecret(with: pairs[i].1, into: UnsafeMutableRawBufferPointer(rebasing: raw[(32 * i)..<(32 * i + 32)]))
            }
        }
        guard ok else { return nil }
        let salt = sha256(label + initiator.bytes + responder.bytes + initMessage + responseMessage)
        guard var okm = hkdfSHA256(salt: salt, ikm: ikm, info: info, length: 64) else { return nil }
        defer { SecureMemory.wipe(&okm) }
        return Keys(initiatorToResponder: Array(okm[0..<32]), responderToInitiator: Array(okm[32..<64]))
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        Sodium.ensureReady()
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { b in
                _ = crypto_hash_sha256(o.baseAddress!, b.baseAddress, UInt64(b.count))
            }
        }
        return out
    }

    /// RFC 5869 with SHA-256, on OpenSSL's HKDF.
    public static func hkdfSHA256(salt: [UInt8], ikm: [UInt8], info: [UInt8], length: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: length)
        let ok = out.withUnsafeMutableBufferPointer { o in
            salt.withUnsafeBufferPointer { s in
                ikm.withUnsafeBufferPointer { k in
                    info.withUnsafeBufferPointer { i in
                        cmyc_hkdf_sha256(s.baseAddress, s.count, k.baseAddress, k.count, i.baseAddress, i.count,
                                         o.baseAddress, o.count)
                    }
                }
            }
        }
        return ok == 1 ? out : nil
    }
}

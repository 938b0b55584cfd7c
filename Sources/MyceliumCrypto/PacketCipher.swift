import COpenSSL
public import MyceliumCore

/// AES-256-GCM for data-packet payloads (spec §4.2), on OpenSSL EVP.
///
/// One instance per peer key: the key schedule is set up once and only the IV changes per
/// packet (the fastest way measured on this platform). An instance is not thread-safe; the
/// datapath keeps one per destination per thread.
public final class PacketCipher {
    public enum Failure: Error, Equatable, Sendable {
        case malformed(WireError)
        case authenticationFailed
    }

    private let encryptContext: OpaquePointer
    private let decryptContext: OpaquePointer
    /// Random nonces drawn from the CSPRNG in bulk: one `getrandom` per 256 packets instead of one
    /// per packet (the syscall was ~5 % of the sender's CPU in `PROFILE=1 bench/throughput.sh`).
    /// Allocated on first use: session ciphers use counter nonces and never need it (3 KiB
    /// saved per session).
    private var noncePool: UnsafeMutableRawBufferPointer?
    private var nonceOffset = 0

    /// `key` is the 32-byte X25519 shared secret.
    public init(key: [UInt8]) {
        precondition(key.count == 32, "AES-256-GCM key must be 32 bytes")
        guard let enc = EVP_CIPHER_CTX_new(), let dec = EVP_CIPHER_CTX_new() else {
            fatalError("EVP_CIPHER_CTX_new failed: out of memory")
        }
        encryptContext = enc
        decryptContext = dec
        key.withUnsafeBufferPointer { k in
            precondition(EVP_EncryptInit_ex(enc, EVP_aes_256_gcm(), nil, k.baseAddress, nil) == 1)
            precondition(EVP_DecryptInit_ex(dec, EVP_aes_256_gcm(), nil, k.baseAddress, nil) == 1)
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(encryptContext)
        EVP_CIPHER_CTX_free(decryptContext)
        noncePool?.deallocate()
    }

    private func nextNonce() -> UnsafeRawPointer {
        let pool: UnsafeMutableRawBufferPointer
        if let p = noncePool {
            pool = p
        } else {
            pool = .allocate(byteCount: 256 * EncryptedPayload.nonceLength, alignment: 16)
            noncePool = pool
            nonceOffset = pool.count
        }
        if nonceOffset == pool.count {
            SecureRandom.fill(pool)
            nonceOffset = 0
        }
        defer { nonceOffset += EncryptedPayload.nonceLength }
        return UnsafeRawPointer(pool.baseAddress! + nonceOffset)
    }

    /// Encrypts `plaintext` (user header ‖ content) and returns ciphertext ‖ tag ‖ nonce.
    /// The nonce is random unless one is given (tests and vectors only).
    public func seal(_ plaintext: [UInt8], nonce fixedNonce: [UInt8]? = nil) -> [UInt8] {
        if let fixedNonce {
            precondition(fixedNonce.count == EncryptedPayload.nonceLength)
            return fixedNonce.withUnsafeBytes { seal(plaintext, nonce: $0.baseAddress!) }
        }
        return seal(plaintext, nonce: nextNonce())
    }

    private func seal(_ plaintext: [UInt8], nonce: UnsafeRawPointer) -> [UInt8] {
        let n = nonce.assumingMemoryBound(to: UInt8.self)
        var out = [UInt8](repeating: 0, count: plaintext.count + EncryptedPayload.overhead)
        out.withUnsafeMutableBufferPointer { o in
            plaintext.withUnsafeBufferPointer { p in
                var written: Int32 = 0
                precondition(EVP_EncryptInit_ex(encryptContext, nil, nil, nil, n) == 1)
                precondition(EVP_EncryptUpdate(encryptContext, o.baseAddress, &written, p.baseAddress, Int32(p.count)) == 1)
                var final: Int32 = 0
                precondition(EVP_EncryptFinal_ex(encryptContext, o.baseAddress! + Int(written), &final) == 1)
                precondition(cmyc_gcm_get_tag(encryptContext, o.baseAddress! + p.count) == 1)
                (o.baseAddress! + p.count + EncryptedPayload.tagLength)
                    .update(from: n, count: EncryptedPayload.nonceLength)
            }
        }
        return out
    }

    /// Seals user header ‖ `body` into one new array (ciphertext ‖ tag ‖ nonce): the datapath's
    /// path, one allocation per packet instead of three (header, concatenation, output).
    public func seal(_ header: UserHeader, _ body: [UInt8]) -> [UInt8] {
        seal(header, body, nonce: nextNonce().assumingMemoryBound(to: UInt8.self))
    }

    /// Seals under a session key with the counter nonce `index ‖ counter` (both big-endian,
    /// docs/sessions.md): the receiver finds its session by `index` and checks `counter` against
    /// its replay window.
    public func seal(_ header: UserHeader, _ body: [UInt8], index: UInt32, counter: UInt64) -> [UInt8] {
        // Three u32s: contiguous, 12 bytes (a (u32, u64) tuple would be padded).
        var nonce = (index.bigEndian, UInt32(truncatingIfNeeded: counter >> 32).bigEndian, UInt32(truncatingIfNeeded: counter).bigEndian)
        return withUnsafeBytes(of: &nonce) { raw in
            seal(header, body, nonce: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Seals user header ‖ `packet` in its own array: `packet` becomes ciphertext ‖ tag ‖ nonce,
    /// with no allocation when it is not shared and has `EncryptedPayload.sealRoom` spare
    /// capacity (`EncryptedPayload.sealable`, the GSO splitter).
    public func sealInPlace(_ header: UserHeader, _ packet: inout [UInt8]) {
        sealInPlace(header, &packet, nonce: nextNonce().assumingMemoryBound(to: UInt8.self))
    }

    /// `sealInPlace` under a session key with the counter nonce `index ‖ counter`.
    public func sealInPlace(_ header: UserHeader, _ packet: inout [UInt8], index: UInt32, counter: UInt64) {
        var nonce = (index.bigEndian, UInt32(truncatingIfNeeded: counter >> 32).bigEndian, UInt32(truncatingIfNeeded: counter).bigEndian)
        withUnsafeBytes(of: &nonce) { raw in
            sealInPlace(header, &packet, nonce: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    private static let room = [UInt8](repeating: 0, count: EncryptedPayload.sealRoom)

    private func sealInPlace(_ header: UserHeader, _ packet: inout [UInt8], nonce n: UnsafePointer<UInt8>) {
        let bodyLength = packet.count
        let sealedLength = UserHeader.length + bodyLength
        packet.append(contentsOf: Self.room)
        packet.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            // The body moves up behind the header (memmove: the regions overlap).
            UnsafeMutableRawPointer(base + UserHeader.length).copyMemory(from: base, byteCount: bodyLength)
            base[0] = UserHeader.version
            base[1] = header.type.rawValue
            base[2] = 0
            base[3] = 0
            var written: Int32 = 0
            var final: Int32 = 0
            // In place (out == in), which EVP allows.
            precondition(EVP_EncryptInit_ex(encryptContext, nil, nil, nil, n) == 1)
            precondition(EVP_EncryptUpdate(encryptContext, base, &written, base, Int32(sealedLength)) == 1)
            precondition(EVP_EncryptFinal_ex(encryptContext, base + sealedLength, &final) == 1)
            precondition(cmyc_gcm_get_tag(encryptContext, base + sealedLength) == 1)
            (base + sealedLength + EncryptedPayload.tagLength).update(from: n, count: EncryptedPayload.nonceLength)
        }
    }

    private func seal(_ header: UserHeader, _ body: [UInt8], nonce n: UnsafePointer<UInt8>) -> [UInt8] {
        let total = UserHeader.length + body.count + EncryptedPayload.overhead
        let head: (UInt8, UInt8, UInt8, UInt8) = (UserHeader.version, header.type.rawValue, 0, 0)
        return [UInt8](unsafeUninitializedCapacity: total) { o, count in
            let base = o.baseAddress!
            var written: Int32 = 0
            precondition(EVP_EncryptInit_ex(encryptContext, nil, nil, nil, n) == 1)
            withUnsafeBytes(of: head) { h in
                precondition(EVP_EncryptUpdate(encryptContext, base, &written, h.bindMemory(to: UInt8.self).baseAddress,
                                               Int32(UserHeader.length)) == 1)
            }
            body.withUnsafeBufferPointer { p in
                precondition(EVP_EncryptUpdate(encryptContext, base + UserHeader.length, &written, p.baseAddress, Int32(p.count)) == 1)
            }
            let sealedLength = UserHeader.length + body.count
            var final: Int32 = 0
            precondition(EVP_EncryptFinal_ex(encryptContext, base + sealedLength, &final) == 1)
            precondition(cmyc_gcm_get_tag(encryptContext, base + sealedLength) == 1)
            (base + sealedLength + EncryptedPayload.tagLength).update(from: n, count: EncryptedPayload.nonceLength)
            count = total
        }
    }

    /// Opens a payload whose plaintext is user header ‖ body: the header (nil when authentic but
    /// not a valid user header) and the body in its own array (one allocation, no copy of the
    /// body out of a whole plaintext).
    public func openSplit(_ payload: [UInt8]) throws(Failure) -> (header: UserHeader?, body: [UInt8]) {
        let layout: (ciphertext: Range<Int>, tag: Range<Int>, nonce: Range<Int>)
        do { layout = try EncryptedPayload.layout(count: payload.count) } catch { throw .malformed(error) }
        let headerLength = min(UserHeader.length, layout.ciphertext.count)
        var head: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var ok = true
        let body = payload.withUnsafeBufferPointer { p -> [UInt8] in
            let base = p.baseAddress!
            var written: Int32 = 0
            guard EVP_DecryptInit_ex(decryptContext, nil, nil, nil, base + layout.nonce.lowerBound) == 1,
                  withUnsafeMutableBytes(of: &head, { h in
                      EVP_DecryptUpdate(decryptContext, h.bindMemory(to: UInt8.self).baseAddress, &written, base, Int32(headerLength))
                  }) == 1 else { ok = false; return [] }
            let bodyLength = layout.ciphertext.count - headerLength
            return [UInt8](unsafeUninitializedCapacity: max(bodyLength, 1)) { o, count in
                var w: Int32 = 0
                var final: Int32 = 0
                guard EVP_DecryptUpdate(decryptContext, o.baseAddress, &w, base + headerLength, Int32(bodyLength)) == 1,
                      cmyc_gcm_set_tag(decryptContext, base + layout.tag.lowerBound) == 1,
                      EVP_DecryptFinal_ex(decryptContext, o.baseAddress! + Int(w), &final) == 1 else {
                    ok = false
                    count = 0
                    return
                }
                count = bodyLength
            }
        }
        guard ok else { throw .authenticationFailed }
        let header = withUnsafeBytes(of: head) { try? UserHeader(decoding: UnsafeRawBufferPointer(rebasing: $0.prefix(headerLength))) }
        return (header, body)
    }

    /// Opens `payload` in place: on success it holds the body alone (the user header and the
    /// tag and nonce removed, no allocation when the array is not shared) and the header is
    /// returned (nil when authentic but not a valid user header). On failure the contents of
    /// `payload` are undefined: the caller drops it.
    public func openInPlace(_ payload: inout [UInt8]) throws(Failure) -> UserHeader? {
        let layout: (ciphertext: Range<Int>, tag: Range<Int>, nonce: Range<Int>)
        do { layout = try EncryptedPayload.layout(count: payload.count) } catch { throw .malformed(error) }
        let ok = payload.withUnsafeMutableBufferPointer { p -> Bool in
            let base = p.baseAddress!
            var written: Int32 = 0
            var final: Int32 = 0
            // In place (out == in), which EVP allows; the tag is set before the final check.
            return EVP_DecryptInit_ex(decryptContext, nil, nil, nil, base + layout.nonce.lowerBound) == 1
                && EVP_DecryptUpdate(decryptContext, base, &written, base, Int32(layout.ciphertext.count)) == 1
                && cmyc_gcm_set_tag(decryptContext, base + layout.tag.lowerBound) == 1
                && EVP_DecryptFinal_ex(decryptContext, base + Int(written), &final) == 1
        }
        guard ok else { throw .authenticationFailed }
        let headerLength = min(UserHeader.length, layout.ciphertext.count)
        let header = payload.withUnsafeBytes { try? UserHeader(decoding: UnsafeRawBufferPointer(rebasing: $0.prefix(headerLength))) }
        payload.removeLast(EncryptedPayload.overhead)
        payload.removeFirst(headerLength)
        return header
    }

    /// Decrypts a payload laid out as ciphertext ‖ tag ‖ nonce; returns the plaintext.
    public func open(_ payload: [UInt8]) throws(Failure) -> [UInt8] {
        let layout: (ciphertext: Range<Int>, tag: Range<Int>, nonce: Range<Int>)
        do { layout = try EncryptedPayload.layout(count: payload.count) } catch { throw .malformed(error) }
        var plaintext = [UInt8](repeating: 0, count: layout.ciphertext.count)
        let ok = plaintext.withUnsafeMutableBufferPointer { o in
            payload.withUnsafeBufferPointer { p -> Bool in
                let base = p.baseAddress!
                var written: Int32 = 0
                guard EVP_DecryptInit_ex(decryptContext, nil, nil, nil, base + layout.nonce.lowerBound) == 1,
                      EVP_DecryptUpdate(decryptContext, o.baseAddress, &written, base, Int32(layout.ciphertext.count)) == 1,
                      cmyc_gcm_set_tag(decryptContext, base + layout.tag.lowerBound) == 1 else { return false }
                var final: Int32 = 0
                return EVP_DecryptFinal_ex(decryptContext, o.baseAddress.map { $0 + Int(written) }, &final) == 1
            }
        }
        guard ok else { throw .authenticationFailed }
        return plaintext
    }
}

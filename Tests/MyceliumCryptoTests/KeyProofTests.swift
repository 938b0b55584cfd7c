import MyceliumCore
import MyceliumCrypto
import Testing

/// The key proof (`KeyProof`): what verifies, and every way a proof must fail.
@Suite struct KeyProofTests {
    static let binding = (0..<32).map { UInt8($0 ^ 0x5C) }

    @Test("the holder of the pinned key answers a challenge, and the proof verifies for that session")
    func proves() throws {
        let peer = SecretKey.generate()
        let challenge = KeyProof.Challenge(pinning: peer.publicKey)
        #expect(challenge.frame.kind == .challenge)
        let proof = try #require(KeyProof.answer(challenge.frame, secret: peer, binding: Self.binding))
        #expect(proof.kind == .proof && proof.key == peer.publicKey)
        try challenge.verify(proof, binding: Self.binding)
        // Plain TCP: no binding, still a proof of the key.
        let unbound = try #require(KeyProof.answer(challenge.frame, secret: peer, binding: []))
        try challenge.verify(unbound, binding: [])
    }

    @Test("another key, a key claimed but not held, another session, a changed byte: each fails")
    func refuses() throws {
        let peer = SecretKey.generate(), impostor = SecretKey.generate()
        let challenge = KeyProof.Challenge(pinning: peer.publicKey)
        let honest = try #require(KeyProof.answer(challenge.frame, secret: impostor, binding: Self.binding))
        #expect(throws: KeyProof.Failure.otherKey(impostor.publicKey)) { try challenge.verify(honest, binding: Self.binding) }
        // The impostor names the pinned key but computes with its own.
        var lying = honest
        lying.key = peer.publicKey
        #expect(throws: KeyProof.Failure.badProof) { try challenge.verify(lying, binding: Self.binding) }
        // A relay: the real peer's proof made on another session (another exporter value).
        let relayed = try #require(KeyProof.answer(challenge.frame, secret: peer, binding: Self.binding.reversed()))
        #expect(throws: KeyProof.Failure.badProof) { try challenge.verify(relayed, binding: Self.binding) }
        #expect(throws: KeyProof.Failure.badProof) { try challenge.verify(relayed, binding: []) }
        let good = try #require(KeyProof.answer(challenge.frame, secret: peer, binding: Self.binding))
        for i in [0, 15, 31] {
            var flipped = good
            flipped.value[i] ^= 1
            #expect(throws: KeyProof.Failure.badProof) { try challenge.verify(flipped, binding: Self.binding) }
        }
        #expect(throws: KeyProof.Failure.notAProof) { try challenge.verify(challenge.frame, binding: Self.binding) }
    }

    @Test("a proof answers one challenge only: a fresh challenge (new ephemeral key and nonce) refuses an old proof")
    func fresh() throws {
        let peer = SecretKey.generate()
        let first = KeyProof.Challenge(pinning: peer.publicKey), second = KeyProof.Challenge(pinning: peer.publicKey)
        #expect(first.frame.key != second.frame.key && first.frame.value != second.frame.value)
        let old = try #require(KeyProof.answer(first.frame, secret: peer, binding: []))
        #expect(throws: KeyProof.Failure.badProof) { try second.verify(old, binding: []) }
        // Same ephemeral key, other nonce: still refused (the nonce is in the MAC).
        var replayed = first.frame
        replayed.value = second.frame.value
        let forOtherNonce = try #require(KeyProof.answer(replayed, secret: peer, binding: []))
        #expect(throws: KeyProof.Failure.badProof) { try first.verify(forOtherNonce, binding: []) }
    }

    @Test("a challenge with a low-order key gets no answer; a proof is not answered")
    func lowOrder() throws {
        let peer = SecretKey.generate()
        let zero = KeyProofFrame(kind: .challenge, key: PublicKey(bytes: [UInt8](repeating: 0, count: 32))!, value: [UInt8](repeating: 1, count: 32))
        #expect(KeyProof.answer(zero, secret: peer, binding: []) == nil)
        var one = [UInt8](repeating: 0, count: 32)
        one[0] = 1
        #expect(KeyProof.answer(KeyProofFrame(kind: .challenge, key: PublicKey(bytes: one)!, value: zero.value), secret: peer, binding: []) == nil)
        let proof = KeyProofFrame(kind: .proof, key: peer.publicKey, value: zero.value)
        #expect(KeyProof.answer(proof, secret: peer, binding: []) == nil)
        // Pinning a low-order key: nobody can prove it.
        let challenge = KeyProof.Challenge(pinning: PublicKey(bytes: one)!)
        let claim = KeyProofFrame(kind: .proof, key: PublicKey(bytes: one)!, value: zero.value)
        #expect(throws: KeyProof.Failure.badProof) { try challenge.verify(claim, binding: []) }
    }
}

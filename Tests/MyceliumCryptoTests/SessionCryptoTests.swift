import MyceliumCore
import MyceliumCrypto
import Testing

@Suite struct SessionCryptoTests {
    static func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

    @Test("HKDF-SHA256 matches RFC 5869 test case 1")
    func hkdf() throws {
        let okm = try #require(SessionCrypto.hkdfSHA256(salt: Self.hex("000102030405060708090a0b0c"),
                                                        ikm: [UInt8](repeating: 0x0b, count: 22),
                                                        info: Self.hex("f0f1f2f3f4f5f6f7f8f9"), length: 42))
        #expect(okm == Self.hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"))
    }

    @Test("both ends derive the same two keys; another ephemeral or transcript gives others")
    func agreement() throws {
        let i = SecretKey.generate(), r = SecretKey.generate(), ei = SecretKey.generate(), er = SecretKey.generate()
        let initMessage = SessionInit(initiatorIndex: 1, timestamp: 2, ephemeral: ei.publicKey).encode()
        let response = SessionResponse(responderIndex: 3, initiatorIndex: 1, ephemeral: er.publicKey).encode()
        let ki = try #require(SessionCrypto.initiatorKeys(staticSecret: i, ephemeral: ei, initiator: i.publicKey, responder: r.publicKey,
                                                          responderEphemeral: er.publicKey, initMessage: initMessage, responseMessage: response))
        let kr = try #require(SessionCrypto.responderKeys(staticSecret: r, ephemeral: er, initiator: i.publicKey,
                                                          initiatorEphemeral: ei.publicKey, responder: r.publicKey,
                                                          initMessage: initMessage, responseMessage: response))
        #expect(ki.initiatorToResponder == kr.initiatorToResponder && ki.responderToInitiator == kr.responderToInitiator)
        #expect(ki.initiatorToResponder != ki.responderToInitiator)
        let other = try #require(SessionCrypto.initiatorKeys(staticSecret: i, ephemeral: SecretKey.generate(), initiator: i.publicKey,
                                                             responder: r.publicKey, responderEphemeral: er.publicKey,
                                                             initMessage: initMessage, responseMessage: response))
        #expect(other.initiatorToResponder != ki.initiatorToResponder)
        // A third party holding only the static keys — the thief of the future — misses ee.
        let eve = try #require(SessionCrypto.initiatorKeys(staticSecret: i, ephemeral: SecretKey.generate(), initiator: i.publicKey,
                                                           responder: r.publicKey, responderEphemeral: er.publicKey,
                                                           initMessage: initMessage, responseMessage: response))
        #expect(eve.responderToInitiator != kr.responderToInitiator)
    }

    @Test("handshake messages: layouts round-trip, short or wrong-version input is refused")
    func codecs() throws {
        let e = SecretKey.generate().publicKey
        let m = SessionInit(initiatorIndex: 0xDEADBEEF, timestamp: 0x0102030405060708, ephemeral: e)
        let bytes = m.encode()
        #expect(bytes.count == SessionInit.length && Array(bytes[4..<16]) == Self.hex("deadbeef0102030405060708"))
        #expect(try SessionInit(decoding: bytes) == m)
        #expect(throws: WireError.self) { try SessionInit(decoding: Array(bytes.prefix(47))) }
        var v2 = bytes
        v2[0] = 2
        #expect(throws: WireError.self) { try SessionInit(decoding: v2) }
        let r = SessionResponse(responderIndex: 7, initiatorIndex: 0xDEADBEEF, ephemeral: e)
        #expect(try SessionResponse(decoding: r.encode()) == r && r.encode().count == SessionResponse.length)
    }

    @Test("a session-sealed payload carries index ‖ counter as its nonce and opens with the same key")
    func counterNonce() throws {
        let key = SecureRandom.bytes(32)
        let cipher = PacketCipher(key: key)
        let sealed = cipher.seal(UserHeader(type: .ipv6), [1, 2, 3], index: 0x01020304, counter: 0x0A0B0C0D0E0F1011)
        let nonce = try #require(SessionWire.nonce(of: sealed))
        #expect(nonce.index == 0x01020304 && nonce.counter == 0x0A0B0C0D0E0F1011)
        let opened = try PacketCipher(key: key).openSplit(sealed)
        #expect(opened.header?.type == .ipv6 && opened.body == [1, 2, 3])
    }
}

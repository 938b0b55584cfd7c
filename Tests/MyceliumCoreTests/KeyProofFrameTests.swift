import MyceliumCore
import Testing

/// Outer packet type 2 (ours): the key proof frame's layout and the stream decoder's handling.
@Suite struct KeyProofFrameTests {
    static let key = PublicKey(bytes: (0..<32).map { UInt8($0) })!
    static let value = (0..<32).map { UInt8(0xA0 + $0) }

    @Test("a challenge is 01 02 00 00, kind 1, 0, the key, the nonce: 70 bytes, and decodes back")
    func layout() throws {
        let frame = Packet.keyProof(KeyProofFrame(kind: .challenge, key: Self.key, value: Self.value))
        let bytes = frame.encode()
        #expect(bytes.count == 4 + KeyProofFrame.bodyLength)
        #expect(Array(bytes[0..<6]) == [1, 2, 0, 0, 1, 0])
        #expect(Array(bytes[6..<38]) == Self.key.bytes && Array(bytes[38...]) == Self.value)
        #expect(try FrameDecoder.decodeSingle(bytes) == frame)
        let proof = Packet.keyProof(KeyProofFrame(kind: .proof, key: Self.key, value: Self.value))
        #expect(proof.encode()[4] == 2)
        #expect(try FrameDecoder.decodeSingle(proof.encode()) == proof)
    }

    @Test("an unknown kind or a set reserved byte drops that frame whole; the stream stays in sync")
    func rejected() throws {
        var badKind = Packet.keyProof(KeyProofFrame(kind: .challenge, key: Self.key, value: Self.value)).encode()
        badKind[4] = 9
        var badReserved = Packet.keyProof(KeyProofFrame(kind: .proof, key: Self.key, value: Self.value)).encode()
        badReserved[5] = 1
        let after = Packet.control(.hello(Hello(seqno: SeqNo(7), interval: 400)))
        var decoder = FrameDecoder()
        decoder.append(badKind + badReserved + after.encode())
        var outputs: [FrameDecoder.Output] = []
        while let out = try decoder.next() { outputs.append(out) }
        #expect(outputs.count == 3)
        #expect(outputs.prefix(2).allSatisfy { if case .dropped = $0 { true } else { false } })
        #expect(outputs.last == .packet(after))
    }

    @Test("a key proof frame split anywhere waits for its last byte")
    func partial() throws {
        let bytes = Packet.keyProof(KeyProofFrame(kind: .challenge, key: Self.key, value: Self.value)).encode()
        for cut in 0..<bytes.count {
            var decoder = FrameDecoder()
            decoder.append(bytes[..<cut])
            #expect(try decoder.next() == nil)
            decoder.append(bytes[cut...])
            #expect(try decoder.next() != nil && decoder.bufferedCount == 0)
        }
    }
}

@Suite struct FrameDecoderResetTests {
    @Test("reset forgets a lost framing and buffered bytes: the next frame decodes")
    func reset() throws {
        var decoder = FrameDecoder()
        decoder.append([1, 9, 0, 0, 0])
        #expect(throws: WireError.unknownPacketType(9)) { try decoder.next() }
        decoder.reset()
        #expect(decoder.bufferedCount == 0)
        let hello = Packet.control(.hello(Hello(seqno: SeqNo(3), interval: 400)))
        decoder.append(hello.encode().prefix(5))
        #expect(try decoder.next() == nil)
        decoder.reset()
        decoder.append(hello.encode())
        #expect(try decoder.next() == .packet(hello))
    }
}

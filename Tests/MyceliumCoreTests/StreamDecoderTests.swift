import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct StreamDecoderTests {
    static func decodeAll(_ chunks: [ArraySlice<UInt8>]) throws -> [FrameDecoder.Output] {
        var decoder = FrameDecoder()
        var outputs: [FrameDecoder.Output] = []
        for chunk in chunks {
            decoder.append(chunk)
            while let out = try decoder.next() { outputs.append(out) }
        }
        #expect(decoder.bufferedCount == 0)
        return outputs
    }

    @Test("byte-by-byte, random chunks and one piece give the same packets")
    func chunking() throws {
        var gen = RandomPackets(seed: 77)
        let packets = (0..<300).map { _ in gen.packet() }
        let stream = packets.flatMap { $0.encode() }
        let whole = try Self.decodeAll([stream[...]])
        #expect(whole == packets.map { .packet($0) })

        let bytewise = try Self.decodeAll(stream.indices.map { stream[$0...$0] })
        #expect(bytewise == whole)

        var rng = SeededRandom(seed: 8)
        for _ in 0..<5 {
            var chunks: [ArraySlice<UInt8>] = []
            var offset = 0
            while offset < stream.count {
                let n = min(Int.random(in: 1...3000, using: &rng), stream.count - offset)
                chunks.append(stream[offset..<(offset + n)])
                offset += n
            }
            #expect(try Self.decodeAll(chunks) == whole)
        }
    }

    @Test("the largest data frame (65535-byte payload) is accepted")
    func largest() throws {
        let p = Packet.data(DataPacket(hopLimit: 1, source: .zero, destination: .zero, payload: [UInt8](repeating: 7, count: 65535)))
        #expect(p.encode().count == FrameDecoder.maxFrameLength)
        #expect(try FrameDecoder.decodeSingle(p.encode()) == p)
    }
}

import MyceliumCore
import MyceliumTesting
import Testing

/// Hostile input: every truncation and byte flip of valid frames, and random garbage, must give
/// a value, a dropped frame, "need more" or an error; never a crash or a hang.
@Suite struct MutationTests {
    /// Drains a decoder; bounded because every non-nil output consumes at least 4 bytes.
    @discardableResult
    static func drain(_ bytes: [UInt8]) -> (outputs: [FrameDecoder.Output], error: WireError?) {
        var decoder = FrameDecoder()
        decoder.append(bytes)
        var outputs: [FrameDecoder.Output] = []
        for _ in 0...(bytes.count / 4 + 1) {
            do {
                guard let out = try decoder.next() else { return (outputs, nil) }
                outputs.append(out)
            } catch {
                return (outputs, error)
            }
        }
        Issue.record("decoder did not stop on \(bytes.count) bytes")
        return (outputs, nil)
    }

    static func sampleFrames() -> [[UInt8]] {
        var gen = RandomPackets(seed: 99)
        var frames = Vectors.mycelium.compactMap { $0["frame_hex"].hexBytes }
        for _ in 0..<40 { frames.append(Packet.control(gen.tlv()).encode()) }
        for _ in 0..<5 { frames.append(Packet.data(gen.dataPacket(maxPayload: 80)).encode()) }
        return frames
    }

    @Test("every truncation of a valid frame needs more bytes, never yields a packet")
    func truncations() {
        for frame in Self.sampleFrames() {
            for length in 0..<frame.count {
                let (outputs, error) = Self.drain(Array(frame.prefix(length)))
                #expect(outputs.isEmpty && error == nil, "prefix \(length) of \(Hex.encode(frame))")
            }
        }
    }

    @Test("every byte flip of a valid frame decodes, drops, waits or errors")
    func byteFlips() {
        for frame in Self.sampleFrames() {
            for index in frame.indices {
                for mask: UInt8 in [0x01, 0x80, 0xFF] {
                    var mutated = frame
                    mutated[index] ^= mask
                    Self.drain(mutated)
                    // Also with a valid frame after it: if framing survived, the second frame arrives intact.
                    let (outputs, error) = Self.drain(mutated + frame)
                    if error == nil, outputs.count >= 2 {
                        #expect(outputs.last == .packet(try! FrameDecoder.decodeSingle(frame)))
                    }
                }
            }
        }
    }

    @Test("a rejected or unknown TLV is skipped by its length and the next frame still decodes")
    func resync() throws {
        let hello = Packet.control(.hello(Hello(seqno: SeqNo(7), interval: 2000))).encode()
        let unknownTLV: [UInt8] = [1, 1, 0, 0, 42, 3, 0, 5, 99, 3, 1, 2, 3]
        let badAE: [UInt8] = [1, 1, 0, 0, 42, 3, 0, 8, 5, 6, 9, 0, 0, 1, 0, 2]
        let hopZero = Vectors.vector("babel.seqno_request.decode.hop_count_zero")["body_hex"].hexBytes!
        var seqnoFrame: [UInt8] = [1, 1, 0, 0, 42, 3]
        seqnoFrame.appendU16(UInt16(hopZero.count + 2))
        seqnoFrame += [10, UInt8(hopZero.count)] + hopZero
        let badMagic: [UInt8] = [1, 1, 0, 0, 41, 3, 0, 8, 4, 6, 0, 0, 0, 0, 0, 0]
        let trailing: [UInt8] = [1, 1, 0, 0, 42, 3, 0, 10, 4, 6, 0x80, 0, 0, 1, 0, 2, 0xAA, 0xBB]
        let stream = unknownTLV + hello + badAE + hello + seqnoFrame + hello + badMagic + hello + trailing
        let (outputs, error) = Self.drain(stream)
        #expect(error == nil)
        let expectedHello = FrameDecoder.Output.packet(try FrameDecoder.decodeSingle(hello))
        #expect(outputs.count == 9)
        #expect(outputs[0] == .dropped(.unknownTLV(type: 99)))
        #expect(outputs[1] == expectedHello)
        if case .dropped = outputs[2] {} else { Issue.record("bad AE not dropped: \(outputs[2])") }
        #expect(outputs[3] == expectedHello)
        #expect(outputs[4] == .dropped(.invalidField("SeqNoRequest hop count 0")))
        #expect(outputs[5] == expectedHello)
        #expect(outputs[6] == .dropped(.badControlHeader(magic: 41, version: 3)))
        #expect(outputs[7] == expectedHello)
        #expect(outputs[8] == .packet(.control(.hello(Hello(flags: 0x8000, seqno: SeqNo(1), interval: 2)))))
    }

    @Test("an unknown outer version or type is fatal and stays fatal")
    func fatal() {
        var decoder = FrameDecoder()
        decoder.append([2, 0, 0, 0, 1, 2, 3])
        #expect(throws: WireError.unsupportedVersion(2)) { try decoder.next() }
        decoder.append(Packet.control(.hello(Hello(seqno: SeqNo(1), interval: 1))).encode())
        #expect(throws: WireError.unsupportedVersion(2)) { try decoder.next() }
        #expect(throws: WireError.unknownPacketType(7)) { try FrameDecoder.decodeSingle([1, 7, 0, 0, 0]) }
    }

    @Test("random garbage never crashes; buffered bytes stay bounded")
    func garbage() {
        var rng = SeededRandom(seed: 1234)
        for _ in 0..<2000 {
            var bytes = rng.bytes(Int.random(in: 0...300, using: &rng))
            if Bool.random(using: &rng), bytes.count >= 2 { bytes[0] = 1; bytes[1] = UInt8.random(in: 0...1, using: &rng) }
            Self.drain(bytes)
        }
        var decoder = FrameDecoder()
        decoder.append([1, 0, 0, 0, 0, 0xFF, 0xFF, 64] + [UInt8](repeating: 0, count: 32))
        #expect(throws: Never.self) { _ = try decoder.next() }
        #expect(decoder.bufferedCount <= FrameDecoder.maxFrameLength)
    }

    @Test("message decoding of mutated and truncated packets never crashes")
    func messages() {
        var gen = RandomPackets(seed: 5)
        for _ in 0..<300 {
            let bytes = gen.message().encode()
            for length in 0..<min(bytes.count, 60) { _ = try? MessagePacket(decoding: Array(bytes.prefix(length))) }
            for index in bytes.indices.prefix(60) {
                var m = bytes
                m[index] ^= 0xFF
                _ = try? MessagePacket(decoding: m)
            }
        }
    }
}

import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct FrameVectorTests {
    static let controlFrames = Vectors.vectors(prefix: "frame.control.").map { $0["id"].string! }

    @Test("whole control frames decode and re-encode byte for byte", arguments: controlFrames)
    func controlFrame(id: String) throws {
        let v = Vectors.vector(id)
        let frame = try #require(v["frame_hex"].hexBytes)
        #expect(frame.count == v["length"].int)
        let packet = try FrameDecoder.decodeSingle(frame)
        guard case let .control(tlv) = packet else { Issue.record("\(id) is not control"); return }
        #expect(Hex.encode(packet.encode()) == Hex.encode(frame))
        if let subnet = v["subnet"].string {
            let expected = try #require(Subnet(subnet))
            switch tlv {
            case let .update(u): #expect(u.subnet == expected)
            case let .routeRequest(r): #expect(r.prefix == expected)
            case let .seqNoRequest(s): #expect(s.prefix == expected)
            default: Issue.record("\(id): unexpected TLV \(tlv)")
            }
        }
    }

    @Test("the encrypted data packet frame")
    func dataFrame() throws {
        let v = Vectors.vector("data.encrypted_l3_packet")
        let frame = try #require(v["frame_hex"].hexBytes)
        #expect(frame.count == v["frame_len"].int)
        guard case let .data(packet) = try FrameDecoder.decodeSingle(frame) else { Issue.record("not data"); return }
        #expect(Int(packet.hopLimit) == v["wire_hop_limit"].int)
        #expect(packet.source.description == v["src_ip"].string)
        #expect(packet.destination.description == v["dst_ip"].string)
        #expect(packet.payload == v["raw_data_hex"].hexBytes)
        #expect(packet.payload.count == v["raw_data_len"].int)
        let layout = try EncryptedPayload.layout(count: packet.payload.count)
        #expect(Array(packet.payload[layout.ciphertext]) == v["ciphertext_hex"].hexBytes)
        #expect(Array(packet.payload[layout.tag]) == v["tag_hex"].hexBytes)
        #expect(Array(packet.payload[layout.nonce]) == v["nonce_hex"].hexBytes)
        #expect(Packet.data(packet).encode() == frame)
        let plaintext = try #require(v["plaintext_hex"].hexBytes)
        #expect(try UserHeader(decoding: plaintext) == UserHeader(type: .ipv6))
        #expect(Array(plaintext.dropFirst(4)) == v["ipv6_packet_hex"].hexBytes)
    }

    @Test("the LAN discovery beacon")
    func beacon() throws {
        let v = Vectors.vector("discovery.beacon")
        let bytes = try #require(v["beacon_hex"].hexBytes)
        #expect(bytes.count == v["length"].int)
        let beacon = try DiscoveryBeacon(decoding: bytes)
        #expect(beacon.tcpPort == 9651)
        #expect(beacon.routerId.description == Vectors.vector("identity.router_id_layout")["display"].string)
        #expect(beacon.encode() == bytes)
        #expect(throws: WireError.self) { try DiscoveryBeacon(decoding: Array(bytes.dropLast())) }
        #expect(throws: WireError.self) { try DiscoveryBeacon(decoding: bytes + [0]) }
        var badMagic = bytes
        badMagic[0] ^= 1
        #expect(throws: WireError.self) { try DiscoveryBeacon(decoding: badMagic) }
    }

    @Test("user header: version must be 1 and the type known; bytes 2–3 unchecked")
    func userHeader() throws {
        #expect(try UserHeader(decoding: [1, 2, 9, 9]).type == .outOfBandICMP)
        #expect(throws: WireError.self) { try UserHeader(decoding: [2, 0, 0, 0]) }
        #expect(throws: WireError.self) { try UserHeader(decoding: [1, 3, 0, 0]) }
        #expect(throws: WireError.self) { try UserHeader(decoding: [1, 0, 0]) }
        #expect(throws: WireError.self) { try EncryptedPayload.layout(count: 31) }
        // The raw-buffer decoder (the datapath's) agrees with the generic one on every input.
        for bytes: [UInt8] in [[1, 2, 9, 9], [2, 0, 0, 0], [1, 3, 0, 0], [1, 0, 0], [1, 0x11, 0, 0, 7], []] {
            let generic = try? UserHeader(decoding: bytes)
            let raw = bytes.withUnsafeBytes { try? UserHeader(decoding: $0) }
            #expect(generic == raw, "\(bytes)")
        }
    }
}

@Suite struct MessageVectorTests {
    static let example = Vectors.vector("message.transfer_example")

    @Test("a whole message exchange decodes and re-encodes byte for byte")
    func transfer() throws {
        let v = Self.example
        let id = try #require(v["message_id_hex"].hexBytes).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let data = Array(try #require(v["data"].string).utf8)
        let topic = Array(try #require(v["topic"].string).utf8)
        let checksum = try #require(v["checksum_blake3_hex"].hexBytes)
        #expect(BLAKE3.hash(data) == checksum)
        let expected: [(String, MessagePacket.Body)] = [
            ("init_hex", .initial(length: UInt64(data.count), topic: topic)),
            ("chunk0_hex", .chunk(index: 0, offset: 0, data: data)),
            ("done_hex", .done(chunkCount: 1, checksum: checksum)),
            ("init_ack_hex", .initialAck(length: UInt64(data.count), topicLength: UInt8(topic.count))),
            ("chunk_ack_hex", .chunkAck(index: 0, offset: 0, size: UInt64(data.count))),
            ("done_ack_hex", .doneAck(chunkCount: 1, checksum: checksum)),
            ("read_hex", .read),
            ("abort_hex", .aborted),
        ]
        for (field, body) in expected {
            let bytes = try #require(v[field].hexBytes, "\(field)")
            let packet = try MessagePacket(decoding: bytes)
            #expect(packet == MessagePacket(id: id, body: body), "\(field)")
            #expect(packet.encode() == bytes, "\(field)")
            #expect(packet.idHex == v["message_id_hex"].string)
        }
    }

    @Test("flag bits as in the Rust tests")
    func flags() throws {
        let v = Vectors.vector("message.flags")
        let table: [(String, MessagePacket.Flags)] = [
            ("INIT", .initial), ("DONE", .done), ("ABORTED", .aborted), ("CHUNK", .chunk),
            ("READ", .read), ("REPLY", .reply), ("ACK", .ack),
        ]
        for (name, flag) in table {
            #expect(Int(flag.rawValue) == v["flags_u16"][name].int, "\(name)")
            #expect(Int(flag.rawValue >> 8) == v["header_byte8_values"][name].int, "\(name)")
        }
        let initAck = MessagePacket(id: 1, body: .initialAck(length: 0, topicLength: 0)).encode()
        #expect(Int(initAck[8]) == v["header_byte8_values"]["INIT|ACK"].int)
        let reply = MessagePacket(id: 1, isReply: true, body: .initial(length: 0, topic: []))
        #expect(try MessagePacket(decoding: reply.encode()) == reply)
    }

    @Test("u64 fields sit at the documented body offsets")
    func fieldOffsets() throws {
        for c in Vectors.vector("message.field_codecs")["cases"].array {
            guard let field = c["field"].string, let bytes = c["bytes_hex"].hexBytes else { continue }
            let body: MessagePacket.Body
            let value = bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if let n = c["value"].int { #expect(UInt64(n) == value, "\(field)") }
            let range: Range<Int>
            switch field.split(separator: " ")[0] {
            case "init.length": body = .initial(length: value, topic: []); range = 0..<8
            case "chunk.idx": body = .chunkAck(index: value, offset: 0, size: 0); range = 0..<8
            case "chunk.offset": body = .chunkAck(index: 0, offset: value, size: 0); range = 8..<16
            case "chunk.size": body = .chunkAck(index: 0, offset: 0, size: value); range = 16..<24
            case "done.chunk_count": body = .done(chunkCount: value, checksum: [UInt8](repeating: 0, count: 32)); range = 0..<8
            case "done.checksum": body = .done(chunkCount: 0, checksum: bytes); range = 8..<40
            default: Issue.record("unknown field \(field)"); continue
            }
            let encoded = MessagePacket(id: 0, body: body).encode()
            let offset = MessagePacket.headerLength
            #expect(Array(encoded[(offset + range.lowerBound)..<(offset + range.upperBound)]) == bytes, "\(field)")
        }
        // "chunk data oversized": 1500 bytes cannot be one chunk packet; decoding refuses it too.
        var oversized = MessagePacket(id: 1, body: .chunkAck(index: 0, offset: 0, size: 1500)).encode()
        oversized[8] = 0x10  // CHUNK without ACK: a chunk claiming 1500 bytes of data
        oversized += [UInt8](repeating: 0, count: 1500)
        #expect(throws: WireError.self) { try MessagePacket(decoding: oversized) }
    }
}

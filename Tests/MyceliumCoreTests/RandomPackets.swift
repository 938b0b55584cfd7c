import MyceliumCore
import MyceliumTesting

/// Random valid values of every codec type, for round-trip and mutation tests.
struct RandomPackets {
    var rng: SeededRandom

    init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    mutating func u8() -> UInt8 { UInt8.random(in: 0...255, using: &rng) }
    mutating func u16() -> UInt16 { UInt16.random(in: 0...UInt16.max, using: &rng) }
    mutating func u64() -> UInt64 { rng.next() }

    mutating func ipv6() -> IPv6Address { IPv6Address(high: rng.next(), low: rng.next()) }

    mutating func routerId() -> RouterId {
        RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, zone: u16(), random: rng.next())
    }

    mutating func subnet(allowIPv4: Bool = true) -> Subnet {
        if allowIPv4, Int.random(in: 0..<5, using: &rng) == 0 {
            return Subnet(address: .v4(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng))),
                          prefixLength: UInt8.random(in: 0...32, using: &rng))!
        }
        // Mostly /64s, as on the real network, plus any other length.
        let plen: UInt8 = Bool.random(using: &rng) ? 64 : UInt8.random(in: 0...128, using: &rng)
        return Subnet(ipv6(), prefixLength: plen)!
    }

    mutating func tlv() -> ControlTLV {
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            return .hello(Hello(flags: Bool.random(using: &rng) ? Hello.unicastFlag : 0, seqno: SeqNo(u16()), interval: u16()))
        case 1:
            let address: IPAddress? = switch Int.random(in: 0..<3, using: &rng) {
            case 0: nil
            case 1: .v4(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)))
            default: .v6(ipv6())
            }
            return .ihu(IHU(rxCost: u16(), interval: u16(), address: address))
        case 2:
            return .update(Update(flags: u8(), interval: u16(), seqno: SeqNo(u16()), metric: Metric(u16()),
                                  subnet: subnet(), routerId: routerId()))
        case 3:
            return .routeRequest(RouteRequest(generation: u8(), prefix: Bool.random(using: &rng) ? nil : subnet()))
        default:
            return .seqNoRequest(SeqNoRequest(seqno: SeqNo(u16()), hopCount: UInt8.random(in: 1...255, using: &rng),
                                              routerId: routerId(), prefix: subnet()))
        }
    }

    mutating func dataPacket(maxPayload: Int = 1500) -> DataPacket {
        DataPacket(hopLimit: u8(), source: ipv6(), destination: ipv6(),
                   payload: rng.bytes(Int.random(in: 0...maxPayload, using: &rng)))
    }

    mutating func packet() -> Packet {
        Int.random(in: 0..<3, using: &rng) == 0 ? .data(dataPacket()) : .control(tlv())
    }

    mutating func message() -> MessagePacket {
        let body: MessagePacket.Body = switch Int.random(in: 0..<8, using: &rng) {
        case 0: .initial(length: u64(), topic: rng.bytes(Int.random(in: 0...255, using: &rng)))
        case 1: .initialAck(length: u64(), topicLength: u8())
        case 2: .chunk(index: u64(), offset: u64(), data: rng.bytes(Int.random(in: 0...MessagePacket.maxChunkData, using: &rng)))
        case 3: .chunkAck(index: u64(), offset: u64(), size: u64())
        case 4: .done(chunkCount: u64(), checksum: rng.bytes(32))
        case 5: .doneAck(chunkCount: u64(), checksum: rng.bytes(32))
        case 6: .read
        default: .aborted
        }
        var isReply = false
        if case .initial = body { isReply = Bool.random(using: &rng) }
        return MessagePacket(id: u64(), isReply: isReply, body: body)
    }
}

import MyceliumCore
import MyceliumCrypto
@testable import MyceliumNode
import NIOCore
import NIOEmbedded
import Testing

/// `KeyProofHandler` alone on an embedded channel (plain, so the binding is empty): what a
/// pinned dialler holds back and lets through, and how every connection answers.
@Suite struct KeyProofHandlerTests {
    /// What reaches the next handler (`PeerHandler` in a node).
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = Packet
        var active = false
        var packets: [Packet] = []
        func channelActive(context: ChannelHandlerContext) { active = true }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { packets.append(unwrapInboundIn(data)) }
    }

    final class Events {
        var list: [KeyProofHandler.Event] = []
        func count(_ match: (KeyProofHandler.Event) -> Bool) -> Int { list.filter(match).count }
    }

    static func channel(identity: SecretKey?, pinned: PublicKey?) throws -> (EmbeddedChannel, Recorder, Events) {
        let recorder = Recorder(), events = Events()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            KeyProofHandler(identity: identity, pinned: pinned) { events.list.append($0) }, recorder,
        ])
        try channel.connect(to: SocketAddress(ipAddress: "::1", port: 9651)).wait()
        return (channel, recorder, events)
    }

    static func hello(_ n: UInt16) -> Packet { .control(.hello(Hello(seqno: SeqNo(n), interval: 400))) }

    @Test("pinned: a challenge goes out first; control packets are held, data dropped; a valid proof lets the connection and the held packets through in order")
    func holdsUntilProven() throws {
        let peer = SecretKey.generate()
        let (channel, recorder, events) = try Self.channel(identity: nil, pinned: peer.publicKey)
        guard case let .keyProof(challenge)? = try channel.readOutbound(as: Packet.self) else {
            Issue.record("no challenge written")
            return
        }
        #expect(challenge.kind == .challenge && !recorder.active)
        for n in 1...3 { try channel.writeInbound(Self.hello(UInt16(n))) }
        try channel.writeInbound(Packet.data(DataPacket(hopLimit: 64, source: .zero, destination: .zero, payload: [1, 2, 3])))
        #expect(recorder.packets.isEmpty && events.count { if case .discarded = $0 { true } else { false } } == 1)
        let proof = try #require(KeyProof.answer(challenge, secret: peer, binding: []))
        try channel.writeInbound(Packet.keyProof(proof))
        #expect(recorder.active)
        #expect(recorder.packets == (1...3).map { Self.hello(UInt16($0)) })
        #expect(events.count { if case .verified = $0 { true } else { false } } == 1)
        try channel.writeInbound(Self.hello(4))
        #expect(recorder.packets.last == Self.hello(4), "passed straight on once proven")
        try channel.writeInbound(Packet.keyProof(proof))
        #expect(events.count { if case .dropped = $0 { true } else { false } } == 1, "a second proof is not asked for")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test("pinned: after a wrong proof nothing gets through, not even a right one arriving before the close")
    func failedStaysFailed() throws {
        let peer = SecretKey.generate(), impostor = SecretKey.generate()
        let (channel, recorder, events) = try Self.channel(identity: nil, pinned: peer.publicKey)
        guard case let .keyProof(challenge)? = try channel.readOutbound(as: Packet.self) else {
            Issue.record("no challenge written")
            return
        }
        let handler = try channel.pipeline.syncOperations.handler(type: KeyProofHandler.self)
        let context = try channel.pipeline.syncOperations.context(handlerType: KeyProofHandler.self)
        // Both proofs in one read, as they would be in one TCP segment: the close comes after.
        handler.channelRead(context: context, data: NIOAny(Packet.keyProof(try #require(KeyProof.answer(challenge, secret: impostor, binding: [])))))
        handler.channelRead(context: context, data: NIOAny(Packet.keyProof(try #require(KeyProof.answer(challenge, secret: peer, binding: [])))))
        #expect(!recorder.active && recorder.packets.isEmpty)
        #expect(events.count { if case .failed = $0 { true } else { false } } == 1)
        #expect(events.count { if case .verified = $0 { true } else { false } } == 0)
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    @Test("a peer sending key proof frames nobody asked for is closed after 8")
    func unaskedFrames() throws {
        let (channel, _, events) = try Self.channel(identity: nil, pinned: nil)
        let frame = Packet.keyProof(KeyProof.Challenge(pinning: SecretKey.generate().publicKey).frame)
        for _ in 0..<(KeyProofHandler.maxDropped - 1) { try channel.writeInbound(frame) }
        #expect(channel.isActive, "a dialled connection does not answer; a few are only counted")
        try channel.writeInbound(frame)
        #expect(!channel.isActive)
        #expect(events.count { if case .dropped = $0 { true } else { false } } == KeyProofHandler.maxDropped)
        #expect(events.count { if case .misbehaved = $0 { true } else { false } } == 1)
    }

    @Test("pinned: at most 256 control packets are held; the rest are counted as discarded")
    func heldLimit() throws {
        let peer = SecretKey.generate()
        let (channel, recorder, events) = try Self.channel(identity: nil, pinned: peer.publicKey)
        guard case let .keyProof(challenge)? = try channel.readOutbound(as: Packet.self) else {
            Issue.record("no challenge written")
            return
        }
        for n in 0..<300 { try channel.writeInbound(Self.hello(UInt16(n))) }
        #expect(events.count { if case .discarded = $0 { true } else { false } } == 300 - KeyProofHandler.maxHeld)
        try channel.writeInbound(Packet.keyProof(try #require(KeyProof.answer(challenge, secret: peer, binding: []))))
        #expect(recorder.packets.count == KeyProofHandler.maxHeld && recorder.packets.first == Self.hello(0))
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test("pinned: no proof in 10 s closes the connection, once, and the next handler never saw it")
    func timeout() throws {
        let (channel, recorder, events) = try Self.channel(identity: nil, pinned: SecretKey.generate().publicKey)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive && !recorder.active)
        let failures = events.list.compactMap { if case let .failed(why) = $0 { why } else { nil } }
        #expect(failures.count == 1 && failures.first?.contains("no key proof within 10000 ms") == true, "\(failures)")
    }

    @Test("an accepted connection answers its first challenge with a valid proof; a second challenge and an unasked proof are dropped")
    func answers() throws {
        let own = SecretKey.generate()
        let (channel, recorder, events) = try Self.channel(identity: own, pinned: nil)
        #expect(recorder.active, "nothing pinned: active at once")
        let challenge = KeyProof.Challenge(pinning: own.publicKey)
        try channel.writeInbound(Packet.keyProof(challenge.frame))
        guard case let .keyProof(proof)? = try channel.readOutbound(as: Packet.self) else {
            Issue.record("no proof written")
            return
        }
        try challenge.verify(proof, binding: [])
        try channel.writeInbound(Packet.keyProof(challenge.frame))
        try channel.writeInbound(Packet.keyProof(proof))
        #expect(try channel.readOutbound(as: Packet.self) == nil)
        #expect(events.count { if case .answered = $0 { true } else { false } } == 1)
        #expect(events.count { if case .dropped = $0 { true } else { false } } == 2)
        #expect(recorder.packets.isEmpty, "key proof frames never reach the router")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}

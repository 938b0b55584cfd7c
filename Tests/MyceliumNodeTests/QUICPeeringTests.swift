import MyceliumCore
import MyceliumNode
import MyceliumQUIC
import MyceliumRouting
import MyceliumTesting
import NIOCore
import NIOPosix
import Testing

/// Real QUIC peers on loopback, in one process (spec §3.6): control packets on the stream,
/// the router driven by real time. Data over datagrams is exercised by the namespace tests.
@Suite struct QUICPeeringTests {
    typealias Node = PeeringTests.Node

    static func makeNode(_ group: any EventLoopGroup, seed: UInt64, peers: [Endpoint] = [], quic: Bool = true) async throws
        -> (node: Node, quicPort: Int?) {
        var rng = SeededRandom(seed: seed)
        let id = RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, random: rng.next())
        let service = RouterService(routerId: id, loop: group.next())
        let configuration = PeerManager.Configuration(listenPort: 0, peers: peers, quicListenPort: quic ? 0 : nil,
                                                      certificateName: "\(id)")
        let manager = PeerManager(configuration: configuration, service: service)
        let address = try await manager.start()
        return (Node(service: service, peers: manager, port: address.port!), manager.quicPort)
    }

    /// Neighbours as `service.connectionDescription` names them ("QUIC -> …", "TCP … <-> …").
    static func links(_ node: Node) async throws -> [String] {
        let service = node.service
        return try await service.loop.submit { service.neighbourIds.map { service.connectionDescription(of: $0) ?? "gone" } }.get().sorted()
    }

    @Test("two nodes peer over QUIC only: each selects the other's /64, the peer shows as quic and alive; a gone peer's route goes")
    func twoNodes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, quicA) = try await Self.makeNode(group, seed: 11)
        let port = try #require(quicA)
        let (b, _) = try await Self.makeNode(group, seed: 12, peers: [try Endpoint(parsing: "quic://[::1]:\(port)")])
        let subnetA = try await a.service.loop.submit { a.subnet }.get()
        let subnetB = try await b.service.loop.submit { b.subnet }.get()
        #expect(try await PeeringTests.eventually(b) { $0.nextHop(for: subnetA) != nil })
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) != nil })
        let listed = await b.peers.peers()
        #expect(listed.map(\.state) == [.alive] && listed.map(\.endpoint.proto) == [.quic])
        #expect(listed.first.map { $0.txBytes > 0 && $0.rxBytes > 0 } == true)
        let inbound = await a.peers.peers()
        #expect(inbound.map(\.type) == [.inbound] && inbound.map(\.endpoint.proto) == [.quic])
        #expect(try await Self.links(b) == ["QUIC -> [::1]:\(port)"])
        await b.peers.shutdown()
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) == nil }, "A drops B's route when B closes")
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("with a TCP and a QUIC link between two nodes, each routes over QUIC (static cost 7 against 10)")
    func prefersQUIC() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, quicA) = try await Self.makeNode(group, seed: 13)
        let port = try #require(quicA)
        let (b, _) = try await Self.makeNode(group, seed: 14, peers: [
            try Endpoint(parsing: "tcp://[::1]:\(a.port)"), try Endpoint(parsing: "quic://[::1]:\(port)"),
        ])
        let subnetA = try await a.service.loop.submit { a.subnet }.get()
        #expect(try await PeeringTests.eventually(b) { $0.nextHop(for: subnetA) != nil })
        try await Task.sleep(for: .seconds(3))  // Hellos and IHUs measure both links; the static costs decide
        let service = b.service
        let via = try await service.loop.submit { () -> String in
            let hop = service.inspect { $0.nextHop(for: subnetA) }
            return hop.map { service.connectionDescription(of: $0) ?? "gone" } ?? "none"
        }.get()
        #expect(via.hasPrefix("QUIC"), "selected: \(via)")
        #expect(try await Self.links(b).count == 2)
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a node without QUIC has no UDP socket: a quic:// dial to it never becomes a peer")
    func disabled() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, quicA) = try await Self.makeNode(group, seed: 15, quic: false)
        #expect(quicA == nil)
        // A's TCP port: nothing listens on its UDP twin.
        let (b, _) = try await Self.makeNode(group, seed: 16, peers: [try Endpoint(parsing: "quic://[::1]:\(a.port)")])
        try await Task.sleep(for: .milliseconds(500))
        #expect(await b.peers.peers().map(\.state) != [.alive])
        #expect(try await a.service.loop.submit { a.service.peerCount }.get() == 0)
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    /// Polls the QUIC counters of `node` until `condition` holds, at most 15 s.
    static func quicCounters(_ node: Node, until condition: (QUICEndpoint.Counters) -> Bool) async throws -> QUICEndpoint.Counters {
        let peers = node.peers
        var counters = QUICEndpoint.Counters()
        for _ in 0..<300 {
            counters = try await node.service.loop.submit { peers.quicCounters }.get()
            if condition(counters) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return counters
    }

    @Test("a QUIC dialler that opens no stream is closed after 10 s and counted; a peer's bad datagrams are counted and dropped, the peer stays")
    func badInput() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, quicA) = try await Self.makeNode(group, seed: 17)
        let target = try SocketAddress(ipAddress: "::1", port: try #require(quicA))
        let loop = group.next()
        let raw = try await QUICEndpoint.bind(host: "::1", port: 0, on: loop, subjectAltName: "raw").get()
        // One dialler stays silent: the handshake completes, no stream ever appears.
        _ = try await loop.submit { try raw.connect(to: target) }.get()
        // Another opens the stream with a valid Hello, then sends datagrams: garbage, a frame
        // with trailing bytes, and a valid control packet.
        let hello: [UInt8] = {
            var bytes: [UInt8] = []
            Packet.control(.hello(Hello(seqno: SeqNo(1), interval: 400))).encode(to: &bytes)
            return bytes
        }()
        let talker = try await loop.submit { () -> QUICConnection in
            let c = try raw.connect(to: target)
            c.onEstablished = { c in
                hello.withUnsafeBytes { _ = c.send($0) }
                for datagram in [[UInt8](repeating: 0xEE, count: 50), hello + [0], hello] {
                    datagram.withUnsafeBytes { _ = c.sendDatagram($0) }
                }
            }
            return c
        }.get()
        let counted = try await Self.quicCounters(a) { $0.datagramsMalformed >= 2 }
        #expect(counted.datagramsMalformed == 2, "\(counted)")
        #expect(try await PeeringTests.eventually(a) { _ in true })
        let service = a.service
        #expect(try await service.loop.submit { service.peerCount }.get() == 1, "the talker is a peer; the silent one is not")
        let timedOut = try await Self.quicCounters(a) { $0.streamTimeouts >= 1 }
        #expect(timedOut.streamTimeouts == 1, "\(timedOut)")
        #expect(try await loop.submit { talker.closeReason == nil }.get(), "the talker survived its bad datagrams")
        try await raw.close().get()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }
}

import Logging
import MyceliumCore
import MyceliumCrypto
import MyceliumNode
import MyceliumRouting
import MyceliumTesting
import NIOCore
import NIOPosix
import Testing

/// Pinned peer keys (`?key=`) on real connections over loopback: TCP, QUIC and a private
/// network's TLS, the peer that cannot answer, and relays in the middle.
@Suite struct KeyPinningTests {
    typealias Node = PeeringTests.Node

    static func makeNode(_ group: any EventLoopGroup, seed: UInt64, identity: SecretKey?, peers: [Endpoint] = [],
                         network: TLSPSKContext? = nil, quic: Bool = false, proofTimeoutMs: Int64 = 10_000)
        async throws -> (node: Node, quicPort: Int?) {
        var rng = SeededRandom(seed: seed)
        let id = RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, random: rng.next())
        let service = RouterService(routerId: id, loop: group.next())
        var configuration = PeerManager.Configuration(listenPort: 0, peers: peers, privateNetwork: network,
                                                      quicListenPort: quic ? 0 : nil, certificateName: "\(id)", identity: identity)
        configuration.redialIntervalMs = 200
        configuration.keyProofTimeoutMs = proofTimeoutMs
        let manager = PeerManager(configuration: configuration, service: service)
        let address = try await manager.start()
        return (Node(service: service, peers: manager, port: address.port!), manager.quicPort)
    }

    static func proofs(_ node: Node) async throws -> PeerManager.KeyProofStats {
        let peers = node.peers
        return try await node.service.loop.submit { peers.keyProofs }.get()
    }

    static func neighbours(_ node: Node) async throws -> Int {
        let service = node.service
        return try await service.loop.submit { service.peerCount }.get()
    }

    /// Polls until `condition` holds, at most 10 s.
    static func until(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<200 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("TCP: a dialler pinning its peer's key peers once the peer has proved it; the peers list shows the key", arguments: [false, true])
    func tcpProven(quic: Bool) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let keyA = SecretKey.generate()
        let (a, quicA) = try await Self.makeNode(group, seed: 31, identity: keyA, quic: quic)
        let target = quic ? "quic://[::1]:\(try #require(quicA))" : "tcp://[::1]:\(a.port)"
        let (b, _) = try await Self.makeNode(group, seed: 32, identity: SecretKey.generate(),
                                             peers: [try Endpoint(parsing: "\(target)?key=\(keyA.publicKey.hex)")], quic: quic)
        let subnetA = try await a.service.loop.submit { a.subnet }.get()
        #expect(try await PeeringTests.eventually(b) { $0.nextHop(for: subnetA) != nil })
        let listed = await b.peers.peers()
        #expect(listed.map(\.state) == [.alive] && listed.first?.endpoint.key == keyA.publicKey)
        let proofsB = try await Self.proofs(b)
        #expect(proofsB.verified == 1 && proofsB.failed == 0)
        #expect(try await Self.proofs(a).answered == 1)
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("another key at the address: the dialler never routes through it, closes each attempt and counts it", arguments: [false, true])
    func wrongKey(quic: Bool) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, quicA) = try await Self.makeNode(group, seed: 33, identity: SecretKey.generate(), quic: quic)
        let pinned = SecretKey.generate().publicKey
        let target = quic ? "quic://[::1]:\(try #require(quicA))" : "tcp://[::1]:\(a.port)"
        let (b, _) = try await Self.makeNode(group, seed: 34, identity: SecretKey.generate(),
                                             peers: [try Endpoint(parsing: "\(target)?key=\(pinned.hex)")], quic: quic)
        #expect(try await Self.until { try await Self.proofs(b).failed >= 3 })
        #expect(try await Self.proofs(b).lastFailure?.contains("the peer answered for key") == true)
        let subnetA = try await a.service.loop.submit { a.subnet }.get()
        #expect(try await b.service.loop.submit { b.service.inspect { $0.nextHop(for: subnetA) } }.get() == nil)
        #expect(try await Self.neighbours(b) == 0)
        #expect(try await Self.proofs(b).verified == 0)
        #expect(await b.peers.peers().map(\.state) != [.alive])
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a peer that cannot answer (no key to answer with, as a Rust node) is closed after the proof timeout; its packets never reach the router")
    func noAnswer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (a, _) = try await Self.makeNode(group, seed: 35, identity: nil)
        let (b, _) = try await Self.makeNode(group, seed: 36, identity: SecretKey.generate(),
                                             peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)?key=\(SecretKey.generate().publicKey.hex)")],
                                             proofTimeoutMs: 300)
        #expect(try await Self.until { try await Self.proofs(b).failed >= 2 })
        #expect(try await Self.proofs(a).dropped >= 2, "the challenges it could not answer are counted")
        #expect(try await Self.neighbours(b) == 0)
        let subnetA = try await a.service.loop.submit { a.subnet }.get()
        #expect(try await b.service.loop.submit { b.service.inspect { $0.nextHop(for: subnetA) } }.get() == nil,
                "A's Update arrived but was held, never given to the router")
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a private network: pinned over TLS works directly; through a relay holding the network key the proof fails (bound to the TLS session), through a plain TCP relay it passes (nothing to bind to)")
    func relays() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let network = try PrivateNetworkTests.context()
        let keyA = SecretKey.generate()
        let (a, _) = try await Self.makeNode(group, seed: 37, identity: keyA, network: network)
        let pin = "?key=\(keyA.publicKey.hex)"

        let (direct, _) = try await Self.makeNode(group, seed: 38, identity: SecretKey.generate(),
                                                  peers: [try Endpoint(parsing: "tls://[::1]:\(a.port)\(pin)")], network: network)
        #expect(try await Self.until { try await Self.neighbours(direct) == 1 })
        #expect(try await Self.proofs(direct).verified == 1)

        let tlsRelay = try await Relay.start(group: group, to: a.port, network: network)
        let (relayed, _) = try await Self.makeNode(group, seed: 39, identity: SecretKey.generate(),
                                                   peers: [try Endpoint(parsing: "tls://[::1]:\(tlsRelay.port)\(pin)")], network: network)
        #expect(try await Self.until { try await Self.proofs(relayed).failed >= 2 })
        let why = try await Self.proofs(relayed).lastFailure ?? ""
        #expect(why.contains("not valid for the pinned key and this session"), "the relay works, the proof does not: \(why)")
        #expect(try await Self.proofs(relayed).verified == 0)
        #expect(try await Self.neighbours(relayed) == 0)

        // Plain TCP: a relay passes the proof on (docs/security.md says so). A node outside a
        // private network is needed for it.
        let (plainA, _) = try await Self.makeNode(group, seed: 40, identity: keyA)
        let tcpRelay = try await Relay.start(group: group, to: plainA.port, network: nil)
        let (viaTCP, _) = try await Self.makeNode(group, seed: 41, identity: SecretKey.generate(),
                                                  peers: [try Endpoint(parsing: "tcp://[::1]:\(tcpRelay.port)\(pin)")])
        #expect(try await Self.until { try await Self.proofs(viaTCP).verified == 1 })
        #expect(try await Self.until { try await Self.neighbours(viaTCP) == 1 })

        for node in [viaTCP, plainA, relayed, direct, a] { await node.peers.shutdown() }
        try await tcpRelay.close()
        try await tlsRelay.close()
        try await group.shutdownGracefully()
    }
}

extension KeyPinningTests {
    @Test("a pinned and an unpinned entry for one target: only the pinned one is dialled; in a private network tcp:// and tls:// are one target")
    func duplicates() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let key = SecretKey.generate().publicKey.hex
        let (plain, _) = try await Self.makeNode(group, seed: 42, identity: SecretKey.generate(), peers: [
            try Endpoint(parsing: "tcp://[::1]:1"), try Endpoint(parsing: "tcp://[::1]:1?key=\(key)"), try Endpoint(parsing: "tcp://[::1]:2"),
        ])
        #expect(await plain.peers.peers().map(\.endpoint.description) == ["tcp://[::1]:1?key=\(key)", "tcp://[::1]:2"])
        let (private_, _) = try await Self.makeNode(group, seed: 43, identity: SecretKey.generate(), peers: [
            try Endpoint(parsing: "tls://[::1]:1"), try Endpoint(parsing: "tcp://[::1]:1?key=\(key)"),
        ], network: try PrivateNetworkTests.context())
        #expect(await private_.peers.peers().map(\.endpoint.description) == ["tcp://[::1]:1?key=\(key)"])
        await #expect(throws: PeerManager.AddError.exists) { try await private_.peers.add(try Endpoint(parsing: "tls://[::1]:1")) }
        for node in [plain, private_] { await node.peers.shutdown() }
        try await group.shutdownGracefully()
    }

    @Test("pinning this node's own key is refused: a peer relaying our own challenge back would pass")
    func ownKey() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let own = SecretKey.generate()
        let (node, _) = try await Self.makeNode(group, seed: 44, identity: own)
        await #expect(throws: PeerManager.AddError.ownKey) {
            try await node.peers.add(try Endpoint(parsing: "tcp://[::1]:1?key=\(own.publicKey.hex)"))
        }
        await node.peers.shutdown()
        try await group.shutdownGracefully()
    }
}

/// A relay on loopback: every connection it accepts is forwarded to `[::1]:port`, byte for byte
/// or, with a network, as a man in the middle holding its key (its own TLS session each side).
struct Relay {
    let server: any Channel
    var port: Int { server.localAddress!.port! }

    static func start(group: any EventLoopGroup, to port: Int, network: TLSPSKContext?) async throws -> Relay {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            if let network {
                                try outbound.pipeline.syncOperations.addHandler(
                                    TLSPSKHandler(context: network, role: .client, logger: Logger(label: "relay")))
                            }
                        }
                    }
                    .connect(host: "::1", port: port)
                    .flatMapThrowing { outbound in
                        if let network {
                            try inbound.pipeline.syncOperations.addHandler(
                                TLSPSKHandler(context: network, role: .server, logger: Logger(label: "relay")))
                        }
                        try inbound.pipeline.syncOperations.addHandler(Glue(partner: outbound))
                        try outbound.pipeline.syncOperations.addHandler(Glue(partner: inbound))
                    }
            }
            .bind(host: "::1", port: 0).get()
        return Relay(server: server)
    }

    func close() async throws { try await server.close().get() }

    /// Writes what one side reads to the other; closes both when one goes.
    final class Glue: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let partner: any Channel
        init(partner: any Channel) { self.partner = partner }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            partner.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) { partner.close(promise: nil) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }
}

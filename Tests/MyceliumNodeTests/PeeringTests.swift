import MyceliumCore
import MyceliumNode
import MyceliumRouting
import MyceliumTesting
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

/// Real TCP peers on loopback, in one process: the router driven by real time.
@Suite struct PeeringTests {
    struct Node {
        let service: RouterService
        let peers: PeerManager
        let port: Int
        var subnet: Subnet { service.inspect { $0.localSubnet } }
    }

    /// `routerLoop`: the router on a loop of its own (as in the node), else on the peers' loop.
    static func makeNode(_ group: any EventLoopGroup, seed: UInt64, peers: [Endpoint] = [],
                         network: TLSPSKContext? = nil, redialMs: Int64 = 5000,
                         routerLoop: (any EventLoop)? = nil) async throws -> Node {
        var rng = SeededRandom(seed: seed)
        let id = RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, random: rng.next())
        let service = RouterService(routerId: id, loop: group.next(), routerLoop: routerLoop)
        var configuration = PeerManager.Configuration(listenPort: 0, peers: peers, privateNetwork: network)
        configuration.redialIntervalMs = redialMs
        let manager = PeerManager(configuration: configuration, service: service)
        let address = try await manager.start()
        return Node(service: service, peers: manager, port: address.port!)
    }

    /// Polls `condition` on the router's loop every 50 ms, for at most `seconds`.
    static func eventually(_ node: Node, seconds: Int = 10, _ condition: @escaping @Sendable (Router) -> Bool) async throws -> Bool {
        for _ in 0..<(seconds * 20) {
            let service = node.service
            if try await service.routerLoop.submit({ service.inspect(condition) }).get() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("two nodes peer over TCP and each selects the other's /64")
    func twoNodes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await Self.makeNode(group, seed: 1)
        let b = try await Self.makeNode(group, seed: 2, peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)")])
        let subnetA = try await a.service.loop.submit { a.subnet }.get()
        let subnetB = try await b.service.loop.submit { b.subnet }.get()
        #expect(try await Self.eventually(b) { $0.nextHop(for: subnetA) != nil })
        #expect(try await Self.eventually(a) { $0.nextHop(for: subnetB) != nil })
        let listed = await b.peers.peers()
        #expect(listed.map(\.state) == [.alive])
        #expect(await a.peers.peers().map(\.type) == [.inbound])
        await b.peers.shutdown()
        #expect(try await Self.eventually(a) { $0.nextHop(for: subnetB) == nil }, "A drops B's route when B goes away")
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a peer sending garbage is disconnected and does not disturb the others")
    func garbagePeer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await Self.makeNode(group, seed: 3)
        let b = try await Self.makeNode(group, seed: 4, peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(a.port)")])
        let subnetB = try await b.service.loop.submit { b.subnet }.get()
        #expect(try await Self.eventually(a) { $0.nextHop(for: subnetB) != nil })

        let rogue = try await ClientBootstrap(group: group).connect(host: "::1", port: a.port).get()
        var junk = rogue.allocator.buffer(capacity: 64)
        junk.writeString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try await rogue.writeAndFlush(junk).get()
        try await rogue.closeFuture.get()  // A hangs up on it

        #expect(try await Self.eventually(a) { $0.nextHop(for: subnetB) != nil })
        #expect(try await a.service.loop.submit { a.service.peerCount }.get() == 1)
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a flood of LAN beacons: 8 discovered peers dialled at once, the rest refused and counted")
    func discoveryFlood() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await Self.makeNode(group, seed: 5)
        for n in 1...100 { a.peers.discovered(try Endpoint(parsing: "tcp://127.0.0.\(n):1")) }
        let peers = a.peers
        let refused = try await a.service.loop.submit { peers.discoveryRefused }.get()  // after every discovered() task
        #expect(refused == UInt64(100 - PeerTuning.discoveryDialBurst))
        #expect(await a.peers.peers().filter { $0.type == .linkLocalDiscovery }.count == PeerTuning.discoveryDialBurst)
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("private network: at most 64 TLS handshakes in progress; further connections are refused and counted")
    func handshakeFlood() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let network = try TLSPSKContext(network: try PrivateNetwork(name: "flood", key: [UInt8](repeating: 3, count: 32)))
        let a = try await Self.makeNode(group, seed: 6, network: network)
        // From 9 loopback addresses (8 connections each at most), none ever sends a ClientHello.
        // All dialled at once, then awaited: awaited one by one, a test run that keeps the
        // cooperative threads busy spread them over more than the 10 s handshake timeout, and
        // the first ones timed out before the last arrived.
        let connects = try (0..<(PeerTuning.maxPendingHandshakes + 6)).map { n in
            let source = try SocketAddress(ipAddress: "127.0.0.\(2 + n / 8)", port: 0)
            return ClientBootstrap(group: group).bind(to: source).connect(host: "127.0.0.1", port: a.port)
        }
        var silent: [any Channel] = []
        for connect in connects { silent.append(try await connect.get()) }
        let peers = a.peers
        var refused: UInt64 = 0
        for _ in 0..<100 where refused < 6 {
            try await Task.sleep(for: .milliseconds(20))
            refused = try await a.service.loop.submit { peers.inboundRefused }.get()
        }
        #expect(refused == 6)
        for channel in silent { try? await channel.close().get() }
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }
}

/// The order in which the router service reports to the datapath.
@Suite struct RouterServiceOrderTests {
    /// Packets queued while a route is looked up are released on `.routeAcquired`; the table
    /// the datapath then routes with must hold the route (the datapath asks for the pending
    /// table first, as here).
    @Test("an acquired route is in the forwarding table the datapath gets at the route event")
    func tableBeforeRouteEvent() throws {
        var rng = SeededRandom(seed: 41)
        let (service, table, channel, id) = Self.serviceWithOnePeer(&rng)
        service.onRouteEvent = { event in
            if case let .routeAcquired(subnet) = event {
                service.publishPendingTable()
                var routable = false
                if case let .route(entry)? = table.current?.lookup(subnet.ipv6!) { routable = entry.nextHop != nil }
                table.acquiredAndRoutable.append(routable)
            }
        }
        let key = PublicKey(bytes: rng.bytes(32))!
        let update = Update(interval: 400, seqno: SeqNo(1), metric: Metric(10), subnet: key.subnet,
                            routerId: RouterId(publicKey: key, random: 2))
        service.received(.update(update), from: id)
        #expect(table.acquiredAndRoutable == [true])
        _ = try? channel.finish()
    }

    /// A flood of Updates read in one loop turn rebuilds the table once, not once per Update.
    @Test("300 new routes in one loop turn publish one forwarding table, holding all of them")
    func onePublicationPerTurn() throws {
        var rng = SeededRandom(seed: 42)
        let (service, table, channel, id) = Self.serviceWithOnePeer(&rng)
        let loop = channel.embeddedEventLoop
        loop.run()
        let before = table.publications
        var subnets: [Subnet] = []
        for i in 0..<300 {
            let key = PublicKey(bytes: rng.bytes(32))!
            subnets.append(key.subnet)
            service.received(.update(Update(interval: 400, seqno: SeqNo(1), metric: Metric(10), subnet: key.subnet,
                                            routerId: RouterId(publicKey: key, random: UInt64(i)))), from: id)
        }
        #expect(service.tablePending)
        #expect(table.publications == before)
        loop.run()
        #expect(table.publications == before + 1)
        #expect(!service.tablePending)
        let routable = subnets.filter { subnet in
            if case let .route(entry)? = table.current?.lookup(subnet.ipv6!) { return entry.nextHop != nil }
            return false
        }
        #expect(routable.count == 300)
        _ = try? channel.finish()
    }

    /// A router service on an embedded loop with one attached peer; `table` records what is
    /// published.
    static func serviceWithOnePeer(_ rng: inout SeededRandom) -> (RouterService, TableBox, EmbeddedChannel, NeighbourId) {
        let loop = EmbeddedEventLoop()
        let service = RouterService(routerId: RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, random: 1), loop: loop)
        let table = TableBox()
        service.onForwardingTable = { table.current = $0; table.publications += 1 }
        let channel = EmbeddedChannel(loop: loop)
        let id = service.attach(channel, staticCost: LinkCost.tcpIPv6)
        return (service, table, channel, id)
    }

    final class TableBox: @unchecked Sendable {  // Touched only on the embedded loop's thread (the test's).
        var current: ForwardingTable?
        var acquiredAndRoutable: [Bool] = []
        var publications = 0
    }
}

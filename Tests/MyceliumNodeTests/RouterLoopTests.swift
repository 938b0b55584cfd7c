import Glibc
import Synchronization
import MyceliumCore
import MyceliumNode
import MyceliumRouting
import NIOCore
import NIOPosix
import Testing

/// The router on a loop of its own, as the node runs it: control packets cross to it in
/// bounded batches, its sends, events and tables cross back.
@Suite struct RouterLoopTests {
    @Test("two nodes with their routers on their own loops peer, select each other's /64 and drop it when the peer goes")
    func twoLoops() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let loops = Array(group.makeIterator())
        let a = try await PeeringTests.makeNode(group, seed: 11, routerLoop: loops[2])
        let b = try await PeeringTests.makeNode(group, seed: 12, peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)")],
                                                routerLoop: loops[3])
        #expect(!a.service.sharedLoop && a.service.loop !== a.service.routerLoop)
        let subnetA = try await a.service.routerLoop.submit { a.subnet }.get()
        let subnetB = try await b.service.routerLoop.submit { b.subnet }.get()
        #expect(try await PeeringTests.eventually(b) { $0.nextHop(for: subnetA) != nil })
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) != nil })
        // The tables crossed to the datapath's loop too.
        let tables = a.service
        #expect(try await tables.loop.submit { tables.peerCount }.get() == 1)
        await b.peers.shutdown()
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) == nil }, "A drops B's route when B goes away")
        await a.peers.shutdown()
        #expect(a.service.droppedAtCrossing == 0)
        try await group.shutdownGracefully()
    }

    @Test("a forwarding table and the route event it answers reach the datapath's loop in that order")
    func tableBeforeEvent() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let loops = Array(group.makeIterator())
        let a = try await PeeringTests.makeNode(group, seed: 13, routerLoop: loops[2])
        let service = a.service
        // What the datapath sees, recorded on its loop: the acquired event must find its subnet in the table before it.
        final class Seen: @unchecked Sendable {  // confined to A's datapath loop (set and read there)
            var table: Set<Subnet> = []
            var acquiredWithoutTable = 0
            var acquired = 0
        }
        let seen = Seen()
        try await service.loop.submit {
            service.onForwardingTable = { table in seen.table = Set(table.entries.map(\.subnet)) }
            service.onRouteEvent = { event in
                if case let .routeAcquired(subnet) = event {
                    seen.acquired += 1
                    if !seen.table.contains(subnet) { seen.acquiredWithoutTable += 1 }
                }
            }
        }.get()
        let b = try await PeeringTests.makeNode(group, seed: 14, peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)")],
                                                routerLoop: loops[3])
        let subnetB = try await b.service.routerLoop.submit { b.subnet }.get()
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) != nil })
        let (acquired, missing) = try await service.loop.submit { (seen.acquired, seen.acquiredWithoutTable) }.get()
        #expect(acquired >= 1 && missing == 0)
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("while the router's loop is busy, at most crossingLimit control packets wait; the rest are dropped and counted, none lost past the bound")
    func boundedCrossing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let id = RouterId(publicKey: PublicKey(bytes: [UInt8](repeating: 7, count: 32))!, random: 1)
        let service = RouterService(routerId: id, loop: loops[0], routerLoop: loops[1])
        let before = try await service.routerLoop.submit { service.inspect { $0.stats.tlvsDiscarded + $0.stats.hellosReceived } }.get()
        // Hold the router's loop while the datapath's loop sends it more than the limit.
        let release = Mutex(false)
        service.routerLoop.execute {
            for _ in 0..<500 where !release.withLock({ $0 }) { usleep(10_000) }
        }
        let extra = 1000
        try await service.loop.submit {
            for _ in 0..<(RouterService.crossingLimit + extra) {
                service.received(.hello(Hello(seqno: SeqNo(1), interval: 400)), from: NeighbourId(999))
            }
        }.get()
        #expect(service.droppedAtCrossing == extra)
        release.withLock { $0 = true }
        let after = try await service.routerLoop.submit { service.inspect { $0.stats.tlvsDiscarded + $0.stats.hellosReceived } }.get()
        #expect(after - before == RouterService.crossingLimit)
        try await group.shutdownGracefully()
    }
}

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
        // The router has the route; its event crosses to the datapath's loop just after (bounded wait).
        var (acquired, missing) = (0, 0)
        for _ in 0..<250 where acquired == 0 {
            (acquired, missing) = try await service.loop.submit { (seen.acquired, seen.acquiredWithoutTable) }.get()
            if acquired == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(acquired >= 1 && missing == 0)
        await b.peers.shutdown()
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("while the router's loop is busy, a flooding neighbour stops being read at its quota and is read again at half; the whole is bounded, the excess dropped and counted, a quiet neighbour's share still crosses")
    func boundedCrossing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let loops = Array(group.makeIterator())
        let a = try await PeeringTests.makeNode(group, seed: 15, routerLoop: loops[2])
        let b = try await PeeringTests.makeNode(group, seed: 16, peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)")],
                                                routerLoop: loops[3])
        let subnetB = try await b.service.routerLoop.submit { b.subnet }.get()
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) != nil })
        let service = a.service
        let neighbour = try await service.routerLoop.submit { service.inspect { $0.neighbourIds.first! } }.get()
        let channel = try await service.loop.submit { try #require(service.channel(of: neighbour)) }.get()
        let before = try await service.routerLoop.submit { service.inspect { $0.stats.hellosReceived } }.get()
        let discardedBefore = try await service.routerLoop.submit { service.inspect { $0.stats.tlvsDiscarded } }.get()

        // Hold the router's loop while the datapath's loop hands it B's control packets.
        let release = Mutex(false)
        service.routerLoop.execute {
            for _ in 0..<1500 where !release.withLock({ $0 }) { usleep(10_000) }
        }
        let hello = ControlTLV.hello(Hello(seqno: SeqNo(1), interval: 400))
        let reading = { () async throws -> Bool in
            try await service.loop.submit { try channel.syncOptions!.getOption(ChannelOptions.autoRead) }.get()
        }
        try await service.loop.submit {
            for _ in 0..<(RouterService.neighbourQuota - 1) { service.received(hello, from: neighbour) }
        }.get()
        #expect(try await reading())
        try await service.loop.submit { service.received(hello, from: neighbour) }.get()
        #expect(try await !reading(), "B is not read once its quota waits")
        // Past the quota (what a read still held) nothing is lost, up to the limit in all.
        let extra = 1000
        try await service.loop.submit {
            for _ in 0..<(RouterService.crossingLimit - RouterService.neighbourQuota + extra) { service.received(hello, from: neighbour) }
        }.get()
        #expect(service.droppedAtCrossing == extra)
        // A quiet neighbour's packets still cross, up to its fair share: the flood's excess is
        // what is dropped, not its Hellos (this neighbour is unknown to the router, which
        // discards and counts what reaches it).
        let quiet = NeighbourId(1 << 40)
        try await service.loop.submit {
            for _ in 0..<(RouterService.fairShare + 5) { service.received(hello, from: quiet) }
        }.get()
        #expect(service.droppedAtCrossing == extra + 5)

        release.withLock { $0 = true }
        var resumed = false
        for _ in 0..<200 where !resumed {
            try await Task.sleep(for: .milliseconds(20))
            resumed = try await reading()
        }
        #expect(resumed, "B is read again once the router has taken its packets")
        // Every Hello that crossed reaches the router (B's own come on top); reading resumes at
        // half, while the router still takes the last chunks, so wait for them (bounded).
        var after = before
        for _ in 0..<250 where after - before < RouterService.crossingLimit {
            after = try await service.routerLoop.submit { service.inspect { $0.stats.hellosReceived } }.get()
            if after - before < RouterService.crossingLimit { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(after - before >= RouterService.crossingLimit)
        var discarded = discardedBefore
        for _ in 0..<250 where discarded - discardedBefore < RouterService.fairShare {
            discarded = try await service.routerLoop.submit { service.inspect { $0.stats.tlvsDiscarded } }.get()
            if discarded - discardedBefore < RouterService.fairShare { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(discarded - discardedBefore == RouterService.fairShare)
        await b.peers.shutdown()
        await a.peers.shutdown()
        service.shutdown()
        try await group.shutdownGracefully()
    }
}

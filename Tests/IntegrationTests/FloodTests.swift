import Foundation
import MyceliumCore
import Synchronization
import Testing

/// Floods in network namespaces: line A–B–C, and a hostile peer E on B. A's host floods its
/// TUN (UDP to C, and to an overlay address nobody announces) while E floods B's peer link with
/// data packets, for a few seconds. Full means drop and count (`mycelium_datapath_dropped`),
/// never growth; a flood cannot starve the peers. So during the floods both nodes answer their
/// API, and afterwards A still pings C, the drops are counted and memory stayed bounded. No
/// timing is asserted: every wait is bounded and only its outcome is checked.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct FloodTests {
    static let metricsPort = 9992
    /// How long each flood runs.
    static let floodSeconds = 3
    /// Generous: the bounded queues and backlogs hold a few tens of MB at most.
    static let rssLimitKiB = 300 * 1024

    /// What E's sending thread reports to the test's thread.
    final class PeerFloodProgress: Sendable {
        let framesSent = Atomic<Int>(0)
        let finished = Atomic<Bool>(false)
    }

    /// The HTTP status of a GET of each path on the node's API in `namespace` (the default
    /// address, 127.0.0.1:8989); 0 where no answer came within 10 s.
    static func apiStatuses(_ namespace: String, _ paths: [String]) -> [Int] {
        let urls = paths.map { "'http://127.0.0.1:8989\($0)'" }.joined(separator: ", ")
        let script = """
            import urllib.request, urllib.error
            for url in [\(urls)]:
                try:
                    print(urllib.request.urlopen(url, timeout=10).status)
                except urllib.error.HTTPError as e:
                    print(e.code)
                except Exception:
                    print(0)
            """
        let out = NamespaceLab.run(["ip", "netns", "exec", namespace, "python3", "-c", script], timeout: 30).output
        let codes = out.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return codes + [Int](repeating: 0, count: max(0, paths.count - codes.count))
    }

    /// The sum over every series of `mycelium_datapath_dropped` (one per reason).
    static func droppedTotal(_ metrics: [String: Double]) -> Double {
        metrics.filter { $0.key == "mycelium_datapath_dropped" || $0.key.hasPrefix("mycelium_datapath_dropped{") }
            .values.reduce(0, +)
    }

    /// Checks `condition` every half second until it holds, at most `tries` times.
    static func eventually(tries: Int, _ condition: () -> Bool) -> Bool {
        for _ in 0..<tries {
            if condition() { return true }
            usleep(500_000)
        }
        return condition()
    }

    @Test("TUN flood and peer-link flood: both nodes answer their API throughout, drops counted, memory bounded, A still pings C")
    func tunAndPeerFlood() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c"), e = try lab.host("e")
        let (_, bFromA) = try lab.link(a, b)
        let (_, cFromB) = try lab.link(b, c)
        let (bFromE, _) = try lab.link(b, e)
        let metricsArguments = ["--metrics-api-address", "[::1]:\(Self.metricsPort)"]
        try lab.startNode(c)
        try lab.startNode(b, peers: [cFromB], arguments: metricsArguments)
        try lab.startNode(a, peers: [bFromA], arguments: metricsArguments)
        let cAddress = try lab.address(of: c)
        let cKey = try lab.publicKey(of: c)
        try #require(lab.ping(from: a, to: cAddress, within: 20), "A cannot reach C: \(lab.log(of: a))")
        func metrics(_ ns: String) -> [String: Double] { lab.metrics(of: ns, port: Self.metricsPort) }
        let tunIn = "mycelium_datapath_packets{direction=\"tun_in\"}"

        // E: an honest-looking peer of B (reads what B sends, announces its /64), then a flood.
        let evil = try HostilePeer(namespace: e, address: bFromE)
        evil.drain()
        #expect(evil.send(evil.announce()))
        let evilAddress = evil.identity.address
        // Sealed for C: B forwards it and C delivers it (an echo request C's host answers).
        let toC = evil.dataPacket(to: cKey)

        let before = (a: metrics(a), b: metrics(b))
        #expect(!before.a.isEmpty && !before.b.isEmpty, "metrics unreadable before the flood")

        // Flood 1, on A's host: UDP into the TUN towards C, and towards a /64 in 400::/7 that
        // nobody announces (queued while A looks for it, then dropped).
        let nowhere = IPv6Address("5ff:0:f100:d::1")!
        let udpToC = try lab.udpFlood(from: a, to: IPv6Address(cAddress)!, seconds: Self.floodSeconds)
        defer { NamespaceLab.terminate(udpToC) }
        let udpToNowhere = try lab.udpFlood(from: a, to: nowhere, seconds: Self.floodSeconds)
        defer { NamespaceLab.terminate(udpToNowhere) }

        // Flood 2, on B's link to E: data packets as fast as B takes them, a quarter forwarded
        // to C, the rest (1 KiB each) to random overlay /64s nobody announces.
        let progress = PeerFloodProgress()
        let seconds = Self.floodSeconds
        let sender = Thread { [evil, progress, toC, evilAddress] in
            defer { progress.finished.store(true, ordering: .releasing) }
            let payload = [UInt8](repeating: 7, count: 1024)
            let end = Date().addingTimeInterval(TimeInterval(seconds))
            var batches = 0
            while batches < 200, Date() < end {
                batches += 1
                var batch = [Packet](repeating: toC, count: 250)
                batch += (0..<750).map { _ -> Packet in
                    let destination = IPv6Address(high: 0x0400_0000_0000_0000 | UInt64.random(in: 0..<(1 << 56)), low: 1)
                    return .data(DataPacket(hopLimit: 64, source: evilAddress, destination: destination, payload: payload))
                }
                guard evil.send(batch) else { return }
                _ = progress.framesSent.add(batch.count, ordering: .relaxed)
            }
        }
        sender.start()

        // During the floods: A's and B's API answer (node info and peers), memory sampled.
        var answers: [String: [Int]] = [:]
        var peakRss = (a: lab.rssKiB(of: a), b: lab.rssKiB(of: b))
        var rounds = 0
        repeat {
            rounds += 1
            for ns in [a, b] {
                answers[ns, default: []] += Self.apiStatuses(ns, ["/api/v1/admin", "/api/v1/admin/peers"])
            }
            peakRss = (max(peakRss.a, lab.rssKiB(of: a)), max(peakRss.b, lab.rssKiB(of: b)))
        } while rounds < 10 && (udpToC.isRunning || udpToNowhere.isRunning || !progress.finished.load(ordering: .acquiring))

        // The floods end by themselves; bounded waits all the same.
        for _ in 0..<150 where udpToC.isRunning || udpToNowhere.isRunning { usleep(100_000) }
        NamespaceLab.terminate(udpToC)
        NamespaceLab.terminate(udpToNowhere)
        for _ in 0..<200 where !progress.finished.load(ordering: .acquiring) { usleep(100_000) }
        let senderFinished = progress.finished.load(ordering: .acquiring)
        #expect(senderFinished, "E's flood did not end")
        peakRss = (max(peakRss.a, lab.rssKiB(of: a)), max(peakRss.b, lab.rssKiB(of: b)))

        for ns in [a, b] {
            let got = answers[ns] ?? []
            let allAnswered = !got.isEmpty && got.allSatisfy { $0 == 200 }
            #expect(allAnswered, "\(ns)'s API did not answer during the flood: \(got)")
        }
        for ns in [a, b, c] {
            let process = lab.nodes[ns]!.process
            #expect(process.isRunning, "\(ns) died (\(process.isRunning ? "" : "status \(process.terminationStatus), \(process.terminationReason == .uncaughtSignal ? "signal" : "exit")")): \(lab.log(of: ns).suffix(2000))")
        }

        // The floods happened: A read UDP from its TUN, E put frames on B's link.
        #expect((metrics(a)[tunIn] ?? 0) > (before.a[tunIn] ?? 0), "A read nothing from its TUN")
        let framesSent = progress.framesSent.load(ordering: .relaxed)
        #expect(framesSent > 0, "E sent no data packets to B")

        // Full means drop and count: the packets for the /64 nobody announces (A) and for the
        // random /64s (B) are dropped (queue full, or no route once their query fails or is
        // refused) and counted, whatever the reason.
        func drops(_ ns: String) -> [String: Double] { metrics(ns).filter { $0.key.hasPrefix("mycelium_datapath_dropped") } }
        let aDropped = Self.eventually(tries: 40) { Self.droppedTotal(metrics(a)) > Self.droppedTotal(before.a) }
        #expect(aDropped, "A counted no drops: \(drops(a))")
        let bDropped = Self.eventually(tries: 40) { Self.droppedTotal(metrics(b)) > Self.droppedTotal(before.b) }
        #expect(bDropped, "B counted no drops: \(drops(b))")

        // Never growth: memory stayed bounded throughout.
        #expect(peakRss.a > 0 && peakRss.a < Self.rssLimitKiB, "A's RSS reached \(peakRss.a) KiB")
        #expect(peakRss.b > 0 && peakRss.b < Self.rssLimitKiB, "B's RSS reached \(peakRss.b) KiB")

        // The peers were not starved: A still reaches C through B, never declared B dead, and
        // both nodes are ready again.
        #expect(lab.ping(from: a, to: cAddress, within: 20), "A cannot reach C after the floods: \(lab.log(of: a).suffix(2000))")
        #expect((metrics(a)["mycelium_router_peer_died"] ?? 0) == 0, "A declared B dead")
        for ns in [a, b] {
            let ready = Self.eventually(tries: 20) { Self.apiStatuses(ns, ["/readyz"]) == [200] }
            #expect(ready, "\(ns) not ready after the floods: \(Self.apiStatuses(ns, ["/readyz", "/api/v1/admin"]))")
        }
        // And a node that carried all this still stops cleanly on SIGTERM: exit status 0.
        for ns in [a, b] {
            let process = lab.nodes[ns]!.process
            NamespaceLab.terminate(process)
            #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                    "\(ns) did not stop cleanly: status \(process.terminationStatus): \(lab.log(of: ns).suffix(1000))")
        }
    }
}

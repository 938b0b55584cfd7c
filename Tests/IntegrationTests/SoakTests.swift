import Foundation
import MyceliumCore
import MyceliumTesting
import Testing

/// Faults and load on a network of real daemons in namespaces (`make soak` runs 50 nodes; the
/// test suite runs the short variant). A random connected graph is brought up, and while
/// pings run between fixed pairs of nodes it goes through: links cut and restored, nodes
/// killed (SIGKILL) and restarted, a partition healed, 200 inbound connections at once plus a
/// peer that sends one byte a second, and a TUN flood during which no neighbour may be
/// declared dead. After every event it records how long until every pair was reachable
/// again; it also records lost pings per phase and each daemon's RSS and CPU before, during
/// and after the load. The report goes to stdout and, line by line, to `MYCELIUM_SOAK_REPORT`.
///
/// What fails the test is an outcome, never a time: a pair that stays unreachable past the
/// bound, a daemon that died, a neighbour declared dead during the flood, an API that stopped
/// answering, or memory past the limit.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct SoakTests {
    /// `MYCELIUM_SOAK=full` (make soak): 50 nodes; otherwise a short variant of 8.
    static let full = ProcessInfo.processInfo.environment["MYCELIUM_SOAK"] == "full"
    static let nodeCount = Int(ProcessInfo.processInfo.environment["MYCELIUM_SOAK_NODES"] ?? "") ?? (full ? 50 : 8)
    /// Full: longer than the 43 s IHU deadline plus the 10 s check, so a control plane starved
    /// by the flood would declare its neighbours dead.
    static let floodSeconds = full ? 60 : 8
    static let crowdSize = 200
    /// Full: long enough for every connection across the cut to die (TCP user timeout 15 s
    /// with data in flight, IHU deadline 43–53 s without), so the halves really lose each
    /// other's routes and must learn them again. Shorter, TCP holds the traffic and delivers
    /// it late when the links return.
    /// Short: 3 s, so TCP keeps every crossing connection (its next retransmission, 6 s after
    /// the cut, gets through) and no neighbour dies late, during the flood check.
    static let partitionSeconds = full ? 60 : 3
    /// Bound on each wait for reachability: dead-link detection is 15 s with traffic (TCP user
    /// timeout) and at most 53 s without (IHU deadline), then routing converges.
    static let reachBoundSeconds = 120
    static let rssLimitKiB = 300 * 1024
    static let metricsPort = 9990

    @Test("soak: cuts, restores, crashes, a partition, a crowd, a slow peer and a flood on a random graph of real daemons")
    func soak() throws {
        let soak = try Soak(nodes: Self.nodeCount)
        defer { soak.finish() }
        try soak.run()
    }
}

/// One soak run: the lab, the graph and the measurements.
final class Soak {
    let lab: NamespaceLab
    let n: Int
    var namespaces: [String] = []
    /// Edges of the graph: (a, b, lab link number). `a` dials `b`.
    var edges: [(a: Int, b: Int, link: Int)] = []
    var addresses: [String] = []
    var report: [String] = []
    var pingers: [(from: Int, to: Int, process: Process, file: String)] = []
    /// (name, start, end) in seconds since 1970, for lost pings per phase.
    var phases: [(String, Double, Double)] = []
    var rng = SeededRandom(seed: 0x50AC)
    /// Samples for the per-daemon table: idle, under the crowd, under the flood, at the end.
    var kept: [(String, Sample)] = []
    let started = Date()

    static let reportPath = ProcessInfo.processInfo.environment["MYCELIUM_SOAK_REPORT"]

    init(nodes: Int) throws {
        lab = try NamespaceLab()
        n = nodes
        if let path = Self.reportPath { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    }

    func say(_ line: String) {
        let stamped = String(format: "[%6.1f s] ", Date().timeIntervalSince(started)) + line
        print(stamped)
        report.append(stamped)
        // `swift test` shows a test's output only when it ends; the report file grows line by
        // line, so a full soak can be followed with `tail -f`.
        if let path = Self.reportPath, let file = FileHandle(forWritingAtPath: path) {
            file.seekToEndOfFile()
            file.write(Data((stamped + "\n").utf8))
            try? file.close()
        }
    }

    // MARK: - the run

    func run() throws {
        try buildGraph()
        try startAll()
        var t0 = Date()
        try #require(waitAllReachable(), "the network never converged")
        say("converged: every node has a route to every other node after \(secs(t0))")
        startPingers()
        let idle = sample()
        sleep(3)
        let idleCPU = sample()
        kept.append(("idle", idleCPU))
        say("idle: " + summary(from: idle, to: idleCPU))

        // 1. Cut links (keeping the graph connected), then restore them.
        let cuts = pickCuttableEdges(count: max(1, edges.count / 10))
        var phaseStart = Date()
        for e in cuts { lab.cut(link: e.link, in: namespaces[e.a]) }
        say("cut \(cuts.count) link(s): \(cuts.map { "\($0.a)–\($0.b)" }.joined(separator: ", "))")
        t0 = Date()
        #expect(waitPairs(cuts.map { ($0.a, $0.b) }) && waitAllReachable(), "not reachable again after the cuts")
        say("after cutting: every cut pair pings and every node routes to every other after \(secs(t0))")
        endPhase("link cut", phaseStart)

        phaseStart = Date()
        for e in cuts { lab.restore(link: e.link, namespaces[e.a], namespaces[e.b]) }
        t0 = Date()
        #expect(waitLinksUp(cuts) && waitAllReachable(), "restored links did not come back")
        say("restored \(cuts.count) link(s): peers reconnected and all routes present after \(secs(t0))")
        endPhase("link restore", phaseStart)

        // 2. Crash nodes (not the pingers' endpoints) and restart them.
        let pingEnds = Set(pingers.flatMap { [$0.from, $0.to] })
        var candidates = (0..<n).filter { !pingEnds.contains($0) }
        candidates.shuffle(using: &rng)
        let victims = Array(candidates.prefix(max(1, n / 10)))
        let observer = pingEnds.min() ?? 0
        phaseStart = Date()
        for v in victims { lab.killNode(namespaces[v]) }
        say("killed node(s) \(victims) with SIGKILL")
        sleep(2)
        for v in victims { try startNode(v) }
        t0 = Date()
        #expect(waitPairs(victims.map { ($0, observer) }) && waitAllReachable(), "not every route back after the restarts")
        say("restarted them (same keys): reachable from everyone after \(secs(t0))")
        endPhase("crash + restart", phaseStart)

        // 3. Partition: cut every link between the two halves, hold, heal.
        let half = n / 2
        let crossing = edges.filter { ($0.a < half) != ($0.b < half) }
        phaseStart = Date()
        for e in crossing { lab.cut(link: e.link, in: namespaces[e.a]) }
        say("partitioned nodes 0..<\(half) from \(half)..<\(n) (\(crossing.count) links cut) for \(SoakTests.partitionSeconds) s")
        sleep(UInt32(SoakTests.partitionSeconds))
        let a = 0, b = n - 1
        let splitSeen = !lab.ping(from: namespaces[a], to: addresses[b], within: 2)
        #expect(splitSeen, "node \(a) still reached node \(b) across the partition")
        for e in crossing { lab.restore(link: e.link, namespaces[e.a], namespaces[e.b]) }
        t0 = Date()
        #expect(waitPairs([(a, b), (half - 1, half)]) && waitAllReachable(), "the healed partition did not reconverge")
        say("healed: every pair reachable again after \(secs(t0))")
        endPhase("partition + heal", phaseStart)

        // 4. 200 inbound connections at once and a peer sending one byte a second.
        try crowdAndSlowPeer()

        // 5. A TUN flood: the control plane must keep Hellos and IHUs on time.
        try flood()

        let end = sample()
        kept.append(("after", end))
        perDaemonTable()
        say("after: " + summary(from: idle, to: end, cpu: false))
        for i in 0..<n { #expect(lab.nodes[namespaces[i]]?.process.isRunning == true, "node \(i) is not running") }
        let pings = stopPingers()
        say("lost pings per phase (of the \(pingers.count) ping flows, 5 pings/s each): " + pings)
    }

    // MARK: - the graph

    func buildGraph() throws {
        for i in 0..<n { namespaces.append(try lab.host("n\(i)")) }
        var pairs = Set<[Int]>()
        // A random spanning tree, then random extra edges up to an average degree of 3.
        for i in 1..<n { pairs.insert([Int.random(in: 0..<i, using: &rng), i]) }
        let target = n >= 4 ? n * 3 / 2 : n - 1
        var attempts = 0
        while pairs.count < target, attempts < 100 * n {
            attempts += 1
            let x = Int.random(in: 0..<n, using: &rng), y = Int.random(in: 0..<n, using: &rng)
            if x != y { pairs.insert([min(x, y), max(x, y)]) }
        }
        for p in pairs.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            try lab.link(namespaces[p[0]], namespaces[p[1]])
            edges.append((p[0], p[1], lab.linkCount))
        }
        say("graph: \(n) nodes, \(edges.count) links (random spanning tree plus random edges)")
    }

    func startNode(_ i: Int) throws {
        // The lower end of each link dials the other (fd77:<link>::2).
        let peers = edges.filter { $0.a == i }.map { "fd77:\($0.link)::2" }
        try lab.startNode(namespaces[i], peers: peers, arguments: ["--metrics-api-address", "[::1]:\(SoakTests.metricsPort)"])
    }

    func startAll() throws {
        let t0 = Date()
        for i in 0..<n { try startNode(i) }
        addresses = try (0..<n).map { try lab.address(of: namespaces[$0]) }
        say("started \(n) daemons in \(secs(t0))")
    }

    /// Up to `count` edges whose removal (all together) leaves the graph connected.
    func pickCuttableEdges(count: Int) -> [(a: Int, b: Int, link: Int)] {
        var chosen: [(a: Int, b: Int, link: Int)] = []
        for e in edges.shuffled(using: &rng) where chosen.count < count {
            if connected(without: chosen.map(\.link) + [e.link]) { chosen.append(e) }
        }
        return chosen
    }

    func connected(without removed: [Int]) -> Bool {
        var adjacency = [[Int]](repeating: [], count: n)
        for e in edges where !removed.contains(e.link) { adjacency[e.a].append(e.b); adjacency[e.b].append(e.a) }
        var seen = Set([0]), frontier = [0]
        while let u = frontier.popLast() { for v in adjacency[u] where seen.insert(v).inserted { frontier.append(v) } }
        return seen.count == n
    }

    // MARK: - waiting (bounded)

    /// Every node has a selected route to every other node's /64 (polled once a second).
    func waitAllReachable() -> Bool {
        let deadline = Date().addingTimeInterval(TimeInterval(SoakTests.reachBoundSeconds))
        var missing: [Int] = []
        repeat {
            missing = (0..<n).filter { selectedRoutes($0) < n - 1 }
            if missing.isEmpty { return true }
            sleep(1)
        } while Date() < deadline
        say("still without every route: nodes \(missing)")
        for i in missing.prefix(4) {
            let have = Set(subnets(api(i, "/api/v1/admin/routes/selected")))
            let lacking = (0..<n).filter { $0 != i && !have.contains(Subnet.slash64(of: IPv6Address(addresses[$0])!)) }
            let fallback = (api(i, "/api/v1/admin/routes/fallback") as? [[String: Any]]) ?? []
            let about = lacking.prefix(3).map { d -> String in
                let subnet = Subnet.slash64(of: IPv6Address(addresses[d])!)
                let entries = fallback.filter { ($0["subnet"] as? String).flatMap(Subnet.init) == subnet }
                    .map { "\($0["nextHop"] ?? "?") seqno \($0["seqno"] ?? "?") metric \($0["metric"] ?? "?")" }
                return "\(d) (fallback: \(entries.isEmpty ? "none" : entries.joined(separator: "; ")))"
            }
            say("  node \(i) lacks routes to \(lacking): " + about.joined(separator: ", "))
        }
        return false
    }

    /// Each pair pings across the overlay (both within the bound).
    func waitPairs(_ pairs: [(Int, Int)]) -> Bool {
        let deadline = Date().addingTimeInterval(TimeInterval(SoakTests.reachBoundSeconds))
        for (x, y) in pairs {
            let left = max(1, Int(deadline.timeIntervalSinceNow))
            guard lab.ping(from: namespaces[x], to: addresses[y], within: left) else {
                say("node \(x) cannot ping node \(y)")
                return false
            }
        }
        return true
    }

    /// Both ends of each link have the other as a connected peer again.
    func waitLinksUp(_ links: [(a: Int, b: Int, link: Int)]) -> Bool {
        let deadline = Date().addingTimeInterval(TimeInterval(SoakTests.reachBoundSeconds))
        repeat {
            if links.allSatisfy({ peerConnected(at: $0.a, to: "fd77:\($0.link)::2") }) { return true }
            sleep(1)
        } while Date() < deadline
        return false
    }

    // MARK: - the node's API

    func api(_ i: Int, _ path: String) -> Any? {
        let script = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8989\(path)', timeout=10).read().decode())"
        let r = NamespaceLab.run(["ip", "netns", "exec", namespaces[i], "python3", "-c", script], timeout: 15)
        guard r.status == 0 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(r.output.utf8))
    }

    func subnets(_ json: Any?) -> [Subnet] {
        ((json as? [[String: Any]]) ?? []).compactMap { ($0["subnet"] as? String).flatMap(Subnet.init) }
    }

    func selectedRoutes(_ i: Int) -> Int {
        (api(i, "/api/v1/admin/routes/selected") as? [Any])?.count ?? -1
    }

    func peerConnected(at i: Int, to host: String) -> Bool {
        guard let peers = api(i, "/api/v1/admin/peers") as? [[String: Any]] else { return false }
        return peers.contains { p in
            let address = (p["endpoint"] as? [String: Any])?["addr"] as? [String: Any]
            return (address?["socket"] as? String)?.contains(host) == true && p["connectionState"] as? String == "alive"
        }
    }

    func metric(_ i: Int, _ name: String) -> Double {
        lab.metrics(of: namespaces[i], port: SoakTests.metricsPort)[name] ?? 0
    }

    // MARK: - load

    func crowdAndSlowPeer() throws {
        let target = 0
        let crowd = try lab.host("crowd")
        let (crowdAddress, targetAddress) = try lab.link(crowd, namespaces[target])
        // One source address per connection: a node accepts at most 8 from one address.
        let base = crowdAddress.replacingOccurrences(of: "::1", with: "::")
        let sources = (0..<SoakTests.crowdSize).map { "\(base)\(String(0x1000 + $0, radix: 16))" }
        let batch = sources.map { "address add \($0)/64 dev v\(lab.linkCount)a nodad" }.joined(separator: "\n")
        let batchFile = lab.directory + "/crowd.batch"
        try batch.write(toFile: batchFile, atomically: true, encoding: .utf8)
        NamespaceLab.run(["ip", "-n", crowd, "-batch", batchFile])
        // The slow peer sends valid Hello frames, one byte a second.
        let hello = Packet.control(.hello(Hello(seqno: SeqNo(1), interval: 2_000))).encode()
        let script = """
            import socket, sys, time, select
            sources, target, hold, frame = sys.argv[1].split(','), sys.argv[2], float(sys.argv[3]), bytes.fromhex(sys.argv[4])
            crowd = []
            for s in sources:
                c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                c.setblocking(False)
                c.bind((s, 0))
                c.connect_ex((target, 9651))
                crowd.append(c)
            slow = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            slow.settimeout(5)
            slow.connect((target, 9651))
            start = time.time()
            sent, slow_closed = 0, None
            while time.time() < start + hold:
                if slow_closed is None:
                    try:
                        slow.send(frame[sent % len(frame):sent % len(frame) + 1]); sent += 1
                    except OSError:
                        slow_closed = time.time() - start
                time.sleep(1)
            def is_open(c):
                if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0: return False
                try:
                    r, _, _ = select.select([c], [], [], 0)
                    return not r or c.recv(65536, socket.MSG_PEEK) != b''
                except OSError:
                    return False
            still = sum(1 for c in crowd if is_open(c))
            print(f"{len(crowd)} opened, {still} still open after {hold:.0f} s; slow peer sent {sent} bytes, "
                  + ("closed by the node after %.0f s" % slow_closed if slow_closed is not None else "still connected"), flush=True)
            """
        let hold = SoakTests.full ? 30 : 12
        let phaseStart = Date()
        let before = sample()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", crowd, "python3", "-c", script, sources.joined(separator: ","), targetAddress, "\(hold)",
                       hello.map { String(format: "%02x", $0) }.joined()]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        say("\(SoakTests.crowdSize) inbound connections at once to node \(target), and a peer sending one byte a second for \(hold) s")
        sleep(UInt32(hold / 2))
        let during = sample()
        kept.append(("crowd", during))
        let inbound = (api(target, "/api/v1/admin/peers") as? [Any])?.count ?? -1
        #expect(inbound >= 0, "node \(target)'s API did not answer under the crowd")
        #expect(lab.ping(from: namespaces[target], to: addresses[n - 1], within: 10), "node \(target) could not ping under the crowd")
        say("during: node \(target) lists \(inbound) peers, answers its API and pings; " + summary(from: before, to: during))
        let deadline = Date().addingTimeInterval(TimeInterval(hold + 20))
        while p.isRunning, Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        say("crowd: \(printed.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(waitAllReachable(), "routes lost after the crowd")
        endPhase("crowd + slow peer", phaseStart)
    }

    func flood() throws {
        let (src, dst) = (0, n - 1)
        // Neighbours declared dead (no IHU for 43 s): what a control plane starved by the flood
        // would do. Each scrape must answer; the baseline is taken once the counters have
        // settled, so a connection that earlier faults left to die is not blamed on the flood.
        func died() -> [Double]? {
            var values: [Double] = []
            for i in 0..<n {
                let m = lab.metrics(of: namespaces[i], port: SoakTests.metricsPort)
                guard let v = m["mycelium_router_peer_died"] else { return nil }
                values.append(v)
            }
            return values
        }
        var diedBefore = died()
        for _ in 0..<20 {
            sleep(3)
            let again = died()
            if again != nil, again == diedBefore { break }
            diedBefore = again
        }
        try #require(diedBefore != nil, "a node's metrics did not answer before the flood")
        let phaseStart = Date()
        let before = sample()
        let flood = try lab.udpFlood(from: namespaces[src], to: IPv6Address(addresses[dst])!, seconds: SoakTests.floodSeconds)
        sleep(UInt32(SoakTests.floodSeconds / 2))
        let during = sample()
        kept.append(("flood", during))
        let status = api(src, "/api/v1/admin")
        while flood.isRunning, Date().timeIntervalSince(phaseStart) < Double(SoakTests.floodSeconds + 10) { usleep(100_000) }
        if flood.isRunning { flood.terminate() }
        flood.waitUntilExit()
        say("TUN flood from node \(src) to node \(dst) for \(SoakTests.floodSeconds) s; during: " + summary(from: before, to: during))
        #expect(status != nil, "node \(src)'s API did not answer during the flood")
        #expect(waitPairs([(src, dst)]), "node \(src) cannot reach node \(dst) after the flood")
        let diedAfter = died()
        try #require(diedAfter != nil, "a node's metrics did not answer after the flood")
        let lost = zip(diedBefore!, diedAfter!).map { $1 - $0 }.reduce(0, +)
        say("neighbours declared dead during the flood: \(Int(lost))")
        #expect(lost == 0, "the flood made nodes declare neighbours dead")
        endPhase("TUN flood", phaseStart)
    }

    // MARK: - pings

    func startPingers() {
        let flows = [(0, n - 1), (n / 2, 1), (n - 2, n / 3)].filter { $0.0 != $0.1 }
        for (x, y) in flows {
            let file = lab.directory + "/ping-\(x)-\(y).txt"
            _ = FileManager.default.createFile(atPath: file, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["ip", "netns", "exec", namespaces[x], "ping", "-6", "-D", "-O", "-i", "0.2", "-W", "1", addresses[y]]
            p.standardOutput = FileHandle(forWritingAtPath: file)
            p.standardError = FileHandle.nullDevice
            try? p.run()
            pingers.append((x, y, p, file))
        }
        say("pinging \(flows.map { "\($0.0)→\($0.1)" }.joined(separator: ", ")) five times a second")
    }

    func endPhase(_ name: String, _ start: Date) {
        phases.append((name, start.timeIntervalSince1970, Date().timeIntervalSince1970))
    }

    /// Stops the pingers; returns lost pings per phase (a ping counts as lost when ping says
    /// "no answer yet" for it and no reply ever came).
    func stopPingers() -> String {
        var lost = [String: Int]()
        var total = 0
        for p in pingers {
            if p.process.isRunning { p.process.interrupt() }
            p.process.waitUntilExit()
            let text = (try? String(contentsOfFile: p.file, encoding: .utf8)) ?? ""
            // Every ping has a sequence number; one without a reply is lost whether ping said
            // "no answer yet" or got an ICMPv6 error (no route during a partition).
            var seen: [Int: Double] = [:]
            var answered = Set<Int>()
            for line in text.split(separator: "\n") {
                guard line.hasPrefix("["), let close = line.firstIndex(of: "]"), let t = Double(line[line.index(after: line.startIndex)..<close]),
                      let seqRange = line.range(of: "icmp_seq=") else { continue }
                let seq = Int(line[seqRange.upperBound...].prefix { $0.isNumber }) ?? -1
                if seen[seq] == nil { seen[seq] = t }
                if line.contains("bytes from") { answered.insert(seq) }
            }
            guard let first = seen.keys.min(), let last = seen.keys.max(), let firstTime = seen[first] else { continue }
            for seq in first...last where !answered.contains(seq) {
                total += 1
                let t = seen[seq] ?? firstTime + Double(seq - first) * 0.2
                let phase = phases.first { t >= $0.1 && t <= $0.2 }?.0 ?? "between phases"
                lost[phase, default: 0] += 1
            }
        }
        let order = phases.map(\.0) + ["between phases"]
        return order.compactMap { name in lost[name].map { "\(name) \($0)" } ?? (name == "between phases" ? nil : "\(name) 0") }
            .joined(separator: ", ") + "; \(total) in all"
    }

    // MARK: - RSS and CPU

    struct Sample {
        let time: Date
        /// Per node: (RSS KiB, CPU ticks user+system, process id).
        let nodes: [(rss: Int, ticks: Int, pid: Int32)]
    }

    func sample() -> Sample {
        Sample(time: Date(), nodes: (0..<n).map { i in
            guard let pid = lab.nodes[namespaces[i]]?.process.processIdentifier else { return (0, 0, 0) }
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            let ticks = fields.count > 12 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
            return (lab.rssKiB(of: namespaces[i]), ticks, pid)
        })
    }

    /// RSS median and max at `to`, and CPU per daemon (median, max) between the two samples.
    func summary(from a: Sample, to b: Sample, cpu: Bool = true) -> String {
        let rss = b.nodes.map(\.rss).sorted()
        for (i, r) in b.nodes.enumerated() { #expect(r.rss < SoakTests.rssLimitKiB, "node \(i) RSS \(r.rss) KiB") }
        var text = "RSS median \(rss[rss.count / 2] / 1024) MB, max \(rss.last! / 1024) MB"
        if cpu {
            let seconds = max(0.1, b.time.timeIntervalSince(a.time))
            let cpus = zip(a.nodes, b.nodes).filter { $0.pid == $1.pid }.map { Double($1.ticks - $0.ticks) / 100 / seconds * 100 }.sorted()
            if !cpus.isEmpty { text += String(format: "; CPU per daemon median %.1f %%, max %.1f %% of a core", cpus[cpus.count / 2], cpus.last!) }
        }
        return text
    }

    /// Every daemon's RSS (MB) at each kept sample, and its CPU (% of a core) from each sample
    /// to the next.
    func perDaemonTable() {
        var header = "node"
        for (name, _) in kept { header += String(format: " %10@", "rss:" + name as NSString) }
        for (name, _) in kept.dropLast() { header += String(format: " %10@", "cpu:" + name as NSString) }
        say("per daemon (RSS in MB; CPU in % of a core from that sample to the next):")
        say(header)
        for i in 0..<n {
            var row = String(format: "%4d", i)
            for (_, s) in kept { row += String(format: " %10.1f", Double(s.nodes[i].rss) / 1024) }
            for (a, b) in zip(kept.dropLast(), kept.dropFirst()) {
                let seconds = max(0.1, b.1.time.timeIntervalSince(a.1.time))
                let ticks = b.1.nodes[i].ticks - a.1.nodes[i].ticks
                // A restarted daemon is a new process: its counter started again.
                row += a.1.nodes[i].pid != b.1.nodes[i].pid ? "  restarted" : String(format: " %10.2f", Double(ticks) / seconds)
            }
            say(row)
        }
    }

    func secs(_ since: Date) -> String { String(format: "%.1f s", Date().timeIntervalSince(since)) }

    func finish() {
        for p in pingers where p.process.isRunning { p.process.interrupt(); p.process.waitUntilExit() }
    }
}

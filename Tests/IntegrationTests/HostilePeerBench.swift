import Foundation
import MyceliumCore
import Testing

/// Measures each attack class against a daemon (bench/hostile.sh; not part of `make test`):
/// whether it survives, its RSS before and after, the CPU it spent, and what reached its TUN.
/// `MYCELIUM_LAB_BINARY` names the binary, so a build from before the hardening can be measured
/// with the same attacks. Prints one `BENCH` line per class.
@Suite(.serialized, .enabled(if: labAvailable && ProcessInfo.processInfo.environment["MYCELIUM_HOSTILE_BENCH"] == "1",
                             "bench/hostile.sh runs it"))
struct HostilePeerBench {
    /// utime + stime of the node's process, in seconds.
    static func cpuSeconds(_ lab: NamespaceLab, _ ns: String) -> Double {
        guard let node = lab.nodes[ns],
              let stat = try? String(contentsOfFile: "/proc/\(node.process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func report(_ name: String, _ s: HostilePeerTests.Setup, rssBefore: Int, cpuBefore: Double, extra: String = "") {
        // Alive means answering: a trapping process lingers for seconds while the Swift
        // runtime writes its backtrace.
        let alive = s.isRunning && !s.lab.metrics(of: s.v, port: HostilePeerTests.metricsPort).isEmpty
            && !s.lab.log(of: s.v).contains("Fatal error")
        let rss = alive ? s.lab.rssKiB(of: s.v) : 0
        let cpu = alive ? cpuSeconds(s.lab, s.v) - cpuBefore : 0
        let reachable = alive && s.lab.ping(from: s.v, to: s.hAddress, within: 5)
        print("BENCH \(name): alive=\(alive) rss_before_kib=\(rssBefore) rss_after_kib=\(rss) "
            + "rss_growth_kib=\(alive ? rss - rssBefore : 0) cpu_s=\(String(format: "%.2f", cpu)) honest_reachable=\(reachable) \(extra)")
    }

    static func randomSubnet() -> Subnet {
        Subnet(IPv6Address(high: 0x0400_0000_0000_0000 | UInt64.random(in: 0..<(1 << 56)), low: 0), prefixLength: 64)!
    }

    @Test("crash: one RouteRequest with generation 255")
    func crashFrame() throws {
        let s = try HostilePeerTests.Setup()
        let rss = s.lab.rssKiB(of: s.v), cpu = Self.cpuSeconds(s.lab, s.v)
        let evil = try s.hostile()
        evil.send(.routeRequest(RouteRequest(generation: 255, prefix: Self.randomSubnet())))
        usleep(1_000_000)
        Self.report("crash-frame", s, rssBefore: rss, cpuBefore: cpu)
    }

    @Test("spoof and relay: 1000 packets with a forged inner source, 1000 to the host's network")
    func spoof() throws {
        let s = try HostilePeerTests.Setup()
        let rss = s.lab.rssKiB(of: s.v), cpu = Self.cpuSeconds(s.lab, s.v)
        let evil = try s.hostile(announce: true)
        let before = s.metric("mycelium_datapath_packets{direction=\"tun_out\"}")
        evil.send((0..<1000).map { _ in evil.dataPacket(to: s.victimKey, innerSource: IPv6Address(s.hAddress)!) })
        evil.send((0..<1000).map { _ in evil.dataPacket(to: s.victimKey, innerDestination: IPv6Address(s.hUnderlay)!) })
        usleep(1_000_000)
        let written = s.metric("mycelium_datapath_packets{direction=\"tun_out\"}") - before
        Self.report("spoof-relay", s, rssBefore: rss, cpuBefore: cpu, extra: "lies_written_to_tun=\(Int(written))")
    }

    @Test("control flood: 20 000 each of Hellos, RouteRequests for random subnets, wildcard RouteRequests")
    func controlFlood() throws {
        let s = try HostilePeerTests.Setup()
        let rss = s.lab.rssKiB(of: s.v), cpu = Self.cpuSeconds(s.lab, s.v)
        let evil = try s.hostile()
        for _ in 0..<4 {
            var flood: [Packet] = []
            for i in 0..<5_000 {
                flood.append(.control(.hello(Hello(seqno: SeqNo(UInt16(i)), interval: 2000))))
                flood.append(.control(.routeRequest(RouteRequest(generation: 0, prefix: Self.randomSubnet()))))
                flood.append(.control(.routeRequest(RouteRequest(generation: 0, prefix: nil))))
            }
            evil.send(flood)
        }
        usleep(2_000_000)
        Self.report("control-flood", s, rssBefore: rss, cpuBefore: cpu)
    }

    @Test("forward flood: 200 000 packets of 1 KiB to random overlay subnets nobody announces")
    func forwardFlood() throws {
        let s = try HostilePeerTests.Setup()
        let rss = s.lab.rssKiB(of: s.v), cpu = Self.cpuSeconds(s.lab, s.v)
        let evil = try s.hostile()
        let payload = [UInt8](repeating: 7, count: 1024)
        for _ in 0..<20 {
            let batch: [Packet] = (0..<10_000).map { i in
                let subnet = Self.randomSubnet()
                return .data(DataPacket(hopLimit: 64, source: evil.identity.address,
                                        destination: IPv6Address(high: subnet.ipv6!.high, low: UInt64(i)), payload: payload))
            }
            guard evil.send(batch) else { break }
        }
        usleep(2_000_000)
        Self.report("forward-flood", s, rssBefore: rss, cpuBefore: cpu)
    }

    @Test("route flood: 40 000 valid routes announced at once while the victim pings its honest neighbour every 10 ms")
    func routeFlood() throws {
        let s = try HostilePeerTests.Setup()
        let rss = s.lab.rssKiB(of: s.v), cpu = Self.cpuSeconds(s.lab, s.v)
        let evil = try s.hostile()
        // Keys of our choosing: each /64 is announced with the router id that owns it.
        let updates: [Packet] = (0..<40_000).map { i in
            var bytes = [UInt8](repeating: 0, count: 32)
            for j in 0..<32 { bytes[j] = UInt8.random(in: 0...255) }
            let key = PublicKey(bytes: bytes)!
            return .control(.update(Update(interval: 30_000, seqno: SeqNo(1), metric: Metric(1), subnet: key.subnet,
                                           routerId: RouterId(publicKey: key, random: UInt64(i)))))
        }
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        ping.arguments = ["netns", "exec", s.v, "ping", "-c", "400", "-i", "0.01", "-W", "1", s.hAddress]
        let out = Pipe()
        ping.standardOutput = out
        try ping.run()
        usleep(500_000)
        for start in stride(from: 0, to: updates.count, by: 5_000) {
            guard evil.send(Array(updates[start..<(start + 5_000)])) else { break }
        }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ping.waitUntilExit()
        let rtts = text.split(separator: "\n").compactMap { line in
            line.range(of: "time=").flatMap { r in Double(line[r.upperBound...].prefix { $0 == "." || $0.isNumber }) }
        }.sorted()
        let avg = rtts.isEmpty ? 0 : rtts.reduce(0, +) / Double(rtts.count)
        let p99 = rtts.isEmpty ? 0 : rtts[min(rtts.count - 1, rtts.count * 99 / 100)]
        let routes = s.metric("mycelium_router_route_selections")
        Self.report("route-flood", s, rssBefore: rss, cpuBefore: cpu,
                    extra: String(format: "pings=%d/400 ping_avg_ms=%.3f ping_p99_ms=%.3f ping_max_ms=%.3f route_selections=%d",
                                  rtts.count, avg, p99, rtts.last ?? 0, Int(routes)))
    }

    @Test("a peer that does not read while the host sends it UDP for 30 s")
    func notReading() throws {
        let s = try HostilePeerTests.Setup()
        let evil = try s.hostile(drain: false, announce: true)
        let rss = s.lab.rssKiB(of: s.v), cpu = Self.cpuSeconds(s.lab, s.v)
        let sender = try s.lab.udpFlood(from: s.v, to: evil.identity.address, seconds: 30)
        var peak = rss
        for _ in 0..<30 {
            usleep(1_000_000)
            peak = max(peak, s.lab.rssKiB(of: s.v))
        }
        NamespaceLab.terminate(sender)
        Self.report("not-reading", s, rssBefore: rss, cpuBefore: cpu, extra: "rss_peak_kib=\(peak)")
    }
}

import MyceliumCore
@testable import MyceliumNode
import MyceliumSystem
import Synchronization
import Logging
import MyceliumRouting
import NIOPosix
import Testing

/// `PeerDNSDiscovery.lookup` against a fake resolver: SRV with or without glue, the A/AAAA
/// fallback, leaving ourselves out, failures, and the endpoints' protocol.
@Suite struct PeerDNSDiscoveryTests {
    static let service = "mycelium-peers.kube-system.svc.cluster.local"
    static let srvOwner = "_mycelium._tcp." + service

    /// Just enough DNS response encoding (uncompressed names) for the fake resolver.
    enum Wire {
        static func name(_ text: String) -> [UInt8] {
            text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
        }
        static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

        enum Data { case a(String), aaaa(String), cname(String), srv(priority: UInt16, port: UInt16, target: String) }

        static func record(_ owner: String, ttl: UInt32, _ data: Data) -> [UInt8] {
            let (type, rdata): (DNSMessage.RecordType, [UInt8]) = switch data {
            case let .a(ip): (.a, IPv4Address(ip)!.bytes)
            case let .aaaa(ip): (.aaaa, IPv6Address(ip)!.bytes)
            case let .cname(target): (.cname, name(target))
            case let .srv(priority, port, target): (.srv, u16(priority) + u16(10) + u16(port) + name(target))
            }
            return name(owner) + u16(type.rawValue) + u16(1) + u16(UInt16(ttl >> 16)) + u16(UInt16(ttl & 0xFFFF))
                + u16(UInt16(rdata.count)) + rdata
        }

        static func response(_ question: String, _ type: DNSMessage.RecordType, answers: [[UInt8]], additional: [[UInt8]] = []) -> [UInt8] {
            u16(7) + u16(0x8180) + u16(1) + u16(UInt16(answers.count)) + u16(0) + u16(UInt16(additional.count))
                + name(question) + u16(type.rawValue) + u16(1) + answers.joined() + additional.joined()
        }
    }

    /// Answers by (name, type); a query it has no answer for is NXDOMAIN. Remembers the queries.
    final class FakeResolver: Sendable {
        let answers: [String: Result<[UInt8], DNSResolver.Failure>]
        let queries = Mutex<[String]>([])

        init(_ answers: [(String, DNSMessage.RecordType, Result<[UInt8], DNSResolver.Failure>)]) {
            self.answers = Dictionary(uniqueKeysWithValues: answers.map { ("\($0.0) \($0.1.rawValue)", $0.2) })
        }

        func resolve(_ name: String, _ type: UInt16) -> Result<[UInt8], DNSResolver.Failure> {
            let key = "\(name) \(type)"
            queries.withLock { $0.append(key) }
            return answers[key] ?? .failure(.notFound)
        }
    }

    static func lookup(_ resolver: FakeResolver, name: String = service, listenPort: UInt16 = 9651,
                       proto: Endpoint.Proto = .tcp, local: Set<IPAddress> = []) -> PeerDNSPlan.Outcome {
        var configuration = PeerDNSDiscovery.Configuration(names: [name], listenPort: listenPort)
        configuration.proto = proto
        return PeerDNSDiscovery.lookup(name, configuration: configuration, resolve: { resolver.resolve($0, $1) }, local: local)
    }

    static func endpoints(_ texts: String...) -> [Endpoint] { texts.map { try! Endpoint(parsing: $0) } }
    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    /// Two pods of a headless Service, as CoreDNS answers: SRV records and their A/AAAA glue.
    static let srvWithGlue = Wire.response(srvOwner, .srv, answers: [
        Wire.record(srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "10-0-0-1." + service)),
        Wire.record(srvOwner, ttl: 30, .srv(priority: 0, port: 9652, target: "fd00--2." + service)),
    ], additional: [
        Wire.record("10-0-0-1." + service, ttl: 20, .a("10.0.0.1")),
        Wire.record("fd00--2." + service, ttl: 25, .aaaa("fd00::2")),
    ])

    @Test("SRV with glue: the endpoints with the SRV ports and the smallest TTL, no further query")
    func srvWithGlueRecords() {
        let resolver = FakeResolver([(Self.srvOwner, .srv, .success(Self.srvWithGlue))])
        #expect(Self.lookup(resolver) == .records(Self.endpoints("tcp://10.0.0.1:9651", "tcp://[fd00::2]:9652"), ttlSeconds: 20))
        #expect(resolver.queries.withLock { $0 } == ["\(Self.srvOwner) 33"])
    }

    @Test("SRV without glue: each target's AAAA and A records are looked up")
    func srvWithoutGlue() {
        let resolver = FakeResolver([
            (Self.srvOwner, .srv, .success(Wire.response(Self.srvOwner, .srv, answers: [
                Wire.record(Self.srvOwner, ttl: 60, .srv(priority: 1, port: 9700, target: "pod-b.example")),
                Wire.record(Self.srvOwner, ttl: 60, .srv(priority: 0, port: 9651, target: "pod-a.example")),
            ]))),
            ("pod-a.example", .aaaa, .success(Wire.response("pod-a.example", .aaaa, answers: [
                Wire.record("pod-a.example", ttl: 40, .aaaa("2001:db8::a")),
            ]))),
            ("pod-a.example", .a, .success(Wire.response("pod-a.example", .a, answers: [
                Wire.record("pod-a.example", ttl: 50, .a("192.0.2.10")),
            ]))),
            ("pod-b.example", .aaaa, .failure(.noData)),
            ("pod-b.example", .a, .success(Wire.response("pod-b.example", .a, answers: [
                Wire.record("pod-b.example", ttl: 90, .cname("pods.example")),
                Wire.record("pods.example", ttl: 45, .a("192.0.2.11")),
            ]))),
        ])
        #expect(Self.lookup(resolver) == .records(
            Self.endpoints("tcp://[2001:db8::a]:9651", "tcp://192.0.2.10:9651", "tcp://192.0.2.11:9700"), ttlSeconds: 40))
    }

    @Test("no SRV records: the name's AAAA and A records with our listen port", arguments: [
        DNSResolver.Failure.noData, .notFound,
    ])
    func addressFallback(srv: DNSResolver.Failure) {
        let resolver = FakeResolver([
            (Self.srvOwner, .srv, .failure(srv)),
            (Self.service, .aaaa, .success(Wire.response(Self.service, .aaaa, answers: [
                Wire.record(Self.service, ttl: 30, .aaaa("fd00::3")),
            ]))),
            (Self.service, .a, .success(Wire.response(Self.service, .a, answers: [
                Wire.record(Self.service, ttl: 10, .a("10.0.0.3")),
                Wire.record(Self.service, ttl: 15, .a("10.0.0.4")),
            ]))),
        ])
        #expect(Self.lookup(resolver, listenPort: 7000) == .records(
            Self.endpoints("tcp://[fd00::3]:7000", "tcp://10.0.0.3:7000", "tcp://10.0.0.4:7000"), ttlSeconds: 10))
    }

    @Test("a search domain the resolver appended does not hide the records")
    func searchDomain() {
        let full = "peers.default.svc.cluster.local"
        let resolver = FakeResolver([
            ("peers", .aaaa, .failure(.noData)),
            ("peers", .a, .success(Wire.response(full, .a, answers: [Wire.record(full, ttl: 30, .a("10.0.0.5"))]))),
        ])
        #expect(Self.lookup(resolver, name: "peers") == .records(Self.endpoints("tcp://10.0.0.5:9651"), ttlSeconds: 30))
    }

    @Test("our own address with our port is left out; our address with another port is kept")
    func leavesOurselvesOut() {
        let resolver = FakeResolver([(Self.srvOwner, .srv, .success(Wire.response(Self.srvOwner, .srv, answers: [
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "self.example")),
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9700, target: "self.example")),
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "other.example")),
        ], additional: [
            Wire.record("self.example", ttl: 30, .a("10.0.0.1")),
            Wire.record("other.example", ttl: 30, .a("10.0.0.2")),
        ])))])
        #expect(Self.lookup(resolver, local: [Self.ip("10.0.0.1"), Self.ip("fd00::1")]) == .records(
            Self.endpoints("tcp://10.0.0.2:9651", "tcp://10.0.0.1:9700"), ttlSeconds: 30))
    }

    @Test("an answer holding only ourselves is empty")
    func onlyOurselves() {
        let resolver = FakeResolver([
            (Self.srvOwner, .srv, .failure(.noData)),
            (Self.service, .aaaa, .success(Wire.response(Self.service, .aaaa, answers: [
                Wire.record(Self.service, ttl: 30, .aaaa("fd00::1")),
            ]))),
            (Self.service, .a, .success(Wire.response(Self.service, .a, answers: [
                Wire.record(Self.service, ttl: 30, .a("10.0.0.1")),
            ]))),
        ])
        #expect(Self.lookup(resolver, local: [Self.ip("10.0.0.1"), Self.ip("fd00::1")]) == .empty)
        #expect(Self.lookup(FakeResolver([]), local: []) == .empty)  // NXDOMAIN everywhere
    }

    @Test("a resolver that gives no answer to the SRV query fails the lookup", arguments: [
        DNSResolver.Failure.tryAgain, .noRecovery, .unusable,
    ])
    func srvFailure(failure: DNSResolver.Failure) {
        let resolver = FakeResolver([(Self.srvOwner, .srv, .failure(failure))])
        guard case .failed = Self.lookup(resolver) else { Issue.record("not failed"); return }
        #expect(resolver.queries.withLock { $0.count } == 1)
    }

    @Test("the fallback fails when neither its AAAA nor its A query is answered")
    func addressFailure() {
        let resolver = FakeResolver([
            (Self.srvOwner, .srv, .failure(.notFound)),
            (Self.service, .aaaa, .failure(.tryAgain)),
            (Self.service, .a, .failure(.tryAgain)),
        ])
        guard case .failed = Self.lookup(resolver) else { Issue.record("not failed"); return }
    }

    @Test("one query answered and one not: partial, so the unanswered family's peers are not taken for gone")
    func partlyAnswered() {
        let resolver = FakeResolver([
            (Self.srvOwner, .srv, .failure(.noData)),
            (Self.service, .aaaa, .failure(.tryAgain)),
            (Self.service, .a, .success(Wire.response(Self.service, .a, answers: [Wire.record(Self.service, ttl: 30, .a("10.0.0.3"))]))),
        ])
        #expect(Self.lookup(resolver) == .partial(Self.endpoints("tcp://10.0.0.3:9651"), ttlSeconds: 30))
        // The same with SRV: one target's addresses unanswered.
        let srv = Wire.response(Self.srvOwner, .srv, answers: [
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "a." + Self.service)),
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "b." + Self.service)),
        ], additional: [Wire.record("a." + Self.service, ttl: 30, .aaaa("fd00::a"))])
        let targets = FakeResolver([
            (Self.srvOwner, .srv, .success(srv)),
            ("b." + Self.service, .aaaa, .failure(.tryAgain)),
            ("b." + Self.service, .a, .failure(.noData)),
        ])
        #expect(Self.lookup(targets) == .partial(Self.endpoints("tcp://[fd00::a]:9651"), ttlSeconds: 30))
    }

    @Test("in a private network the endpoints are tls://")
    func tls() {
        let resolver = FakeResolver([(Self.srvOwner, .srv, .success(Self.srvWithGlue))])
        #expect(Self.lookup(resolver, proto: .tls) == .records(
            Self.endpoints("tls://10.0.0.1:9651", "tls://[fd00::2]:9652"), ttlSeconds: 20))
    }

    @Test("a malformed SRV response fails the lookup", arguments: [
        Array(srvWithGlue.dropLast()), [UInt8](), [0, 7, 0x01, 0x00] + Array(srvWithGlue.dropFirst(4)),  // truncated, empty, a query
    ])
    func malformed(bytes: [UInt8]) {
        let resolver = FakeResolver([(Self.srvOwner, .srv, .success(bytes))])
        guard case let .failed(why) = Self.lookup(resolver) else { Issue.record("not failed"); return }
        #expect(why.contains("malformed"))
    }

    @Test("a resolver that never returns is given up after the lookup timeout, and at most two such lookups are out at once")
    func stuckResolver() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let service = RouterService(routerId: RouterId(publicKey: PublicKey(bytes: [UInt8](repeating: 3, count: 32))!, random: 1),
                                    loop: group.next())
        let peers = PeerManager(configuration: .init(listenPort: 0), service: service)
        var configuration = PeerDNSDiscovery.Configuration(names: [Self.service], listenPort: 9651)
        configuration.lookupTimeout = .milliseconds(100)
        // Blocks its thread until the test lets it go (at most 10 s, so nothing is left behind):
        // the outcome depends on the order of events, not on how loaded the machine is.
        let released = Atomic<Bool>(false)
        let discovery = PeerDNSDiscovery(configuration: configuration, peers: peers, logger: Logger(label: "test"),
                                         resolve: { _, _ in
                                             for _ in 0..<1_000 where !released.load(ordering: .acquiring) { usleep(10_000) }
                                             return .failure(.tryAgain)
                                         }, localAddresses: { [] })
        for _ in 0..<2 {
            guard case let .failed(why) = await discovery.lookupWithDeadline(Self.service) else { Issue.record("not failed"); return }
            #expect(why.contains("no answer from the system resolver within"), "\(why)")
        }
        guard case let .failed(why) = await discovery.lookupWithDeadline(Self.service) else { Issue.record("not failed"); return }
        #expect(why.contains("still stuck"), "\(why)")
        let stillBlocked = !released.load(ordering: .acquiring)
        #expect(stillBlocked, "the caller never waited for the stuck resolver")
        released.store(true, ordering: .releasing)
        // Once the stuck threads returned, lookups run again (bounded wait for them to notice).
        var again = ""
        for _ in 0..<100 {
            guard case let .failed(why) = await discovery.lookupWithDeadline(Self.service) else { Issue.record("not failed"); return }
            again = why
            if !why.contains("still stuck") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!again.contains("still stuck"), "once the stuck threads returned, lookups run again: \(again)")
        try await group.shutdownGracefully()
    }

    @Test("a truncated SRV answer is partial; duplicate SRV records count once")
    func truncatedAndDuplicates() {
        var srv = Wire.response(Self.srvOwner, .srv, answers: [
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "a." + Self.service)),
            Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: "a." + Self.service)),
        ], additional: [Wire.record("a." + Self.service, ttl: 30, .aaaa("fd00::a"))])
        #expect(Self.lookup(FakeResolver([(Self.srvOwner, .srv, .success(srv))])) == .records(Self.endpoints("tcp://[fd00::a]:9651"), ttlSeconds: 30))
        srv[2] |= 0x02  // TC
        #expect(Self.lookup(FakeResolver([(Self.srvOwner, .srv, .success(srv))])) == .partial(Self.endpoints("tcp://[fd00::a]:9651"), ttlSeconds: 30))
    }

    @Test("more SRV targets without addresses than one round looks up: taken in turn, remembered for their TTL")
    func manyTargetsWithoutGlue() {
        let count = PeerDNSDiscovery.maxTargetLookups + 6
        let targets = (0..<count).map { "t\($0)." + Self.service }
        var answers: [(String, DNSMessage.RecordType, Result<[UInt8], DNSResolver.Failure>)] = [
            (Self.srvOwner, .srv, .success(Wire.response(Self.srvOwner, .srv, answers: targets.map {
                Wire.record(Self.srvOwner, ttl: 30, .srv(priority: 0, port: 9651, target: $0))
            }))),
        ]
        for (i, target) in targets.enumerated() {
            answers.append((target, .aaaa, .success(Wire.response(target, .aaaa, answers: [Wire.record(target, ttl: 60, .aaaa("fd00::\(i + 1)"))]))))
            answers.append((target, .a, .failure(.noData)))
        }
        let resolver = FakeResolver(answers)
        var configuration = PeerDNSDiscovery.Configuration(names: [Self.service], listenPort: 9651)
        configuration.proto = .tcp
        var cache = PeerDNSDiscovery.TargetCache()
        // Round one: 64 targets looked up, 6 left for later: partial.
        let first = PeerDNSDiscovery.lookup(Self.service, configuration: configuration, resolve: { resolver.resolve($0, $1) },
                                            local: [], cache: &cache, now: 0, rotation: 0)
        guard case let .partial(some, _) = first else { Issue.record("not partial: \(first)"); return }
        #expect(some.count == PeerDNSDiscovery.maxTargetLookups)
        // Round two: the other 6 are looked up, the 64 come from the cache: complete.
        resolver.queries.withLock { $0 = [] }
        let second = PeerDNSDiscovery.lookup(Self.service, configuration: configuration, resolve: { resolver.resolve($0, $1) },
                                             local: [], cache: &cache, now: 5_000, rotation: 1)
        guard case let .records(all, _) = second else { Issue.record("not complete: \(second)"); return }
        #expect(all.count == count)
        #expect(resolver.queries.withLock { $0.count } == 1 + 6 * 2, "only the SRV query and the 6 uncached targets")
    }
}

import MyceliumCore
import Testing

/// The `--peer-dns` schedule and endpoint table: when names are due, how TTLs, empty answers and
/// failures move the next lookup, and when endpoints are added, kept, forgotten or refused.
extension PeerDNSPlan.Change {
    /// Nothing added, removed or refused (`Change` has no public initialiser to compare with).
    var isNone: Bool { added.isEmpty && removed.isEmpty && refused == 0 }
}

@Suite struct PeerDNSPlanTests {
    static func peer(_ n: Int, port: UInt16 = 9651) -> Endpoint {
        Endpoint(proto: .tcp, host: .ip(.v4(IPv4Address(0x0A00_0000 + UInt32(n)))), port: port)
    }

    static let p1 = peer(1), p2 = peer(2), p3 = peer(3)

    @Test("every name is due at start, duplicates once; a recorded name waits until its next lookup")
    func due() {
        var plan = PeerDNSPlan(names: ["a", "b", "a"], now: 1_000)
        #expect(plan.names == ["a", "b"])
        #expect(plan.due(now: 999).isEmpty)
        #expect(plan.due(now: 1_000) == ["a", "b"])
        #expect(plan.nextDue == 1_000)
        _ = plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 1_000)
        #expect(plan.due(now: 1_000) == ["b"])
        _ = plan.record(.records([Self.p1], ttlSeconds: 60), for: "b", now: 2_000)
        #expect(plan.nextDue == 31_000)
        #expect(plan.due(now: 30_999).isEmpty)
        #expect(plan.due(now: 31_000) == ["a"])
        #expect(plan.due(now: 62_000) == ["a", "b"])
        #expect(PeerDNSPlan(names: [], now: 0).nextDue == nil)
    }

    @Test("the next lookup follows the TTL, clamped to 5 s ... 300 s", arguments: [
        (UInt32(0), Int64(5_000)), (1, 5_000), (5, 5_000), (30, 30_000), (300, 300_000), (3_600, 300_000), (.max, 300_000),
    ])
    func ttl(ttl: UInt32, wait: Int64) {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        _ = plan.record(.records([Self.p1], ttlSeconds: ttl), for: "a", now: 10_000)
        #expect(plan.nextDue == 10_000 + wait)
    }

    @Test("an empty answer is looked up again after 10 s")
    func empty() {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        #expect(plan.record(.empty, for: "a", now: 7_000).isNone)
        #expect(plan.nextDue == 17_000)
    }

    @Test("failures back off 5 s, 10 s, 20 s, 40 s, then 60 s; an answer resets the back-off")
    func backoff() {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        var now: Int64 = 0
        for wait: Int64 in [5_000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000] {
            #expect(plan.record(.failed("timeout"), for: "a", now: now).isNone)
            #expect(plan.nextDue == now + wait)
            now += wait
        }
        _ = plan.record(.empty, for: "a", now: now)
        _ = plan.record(.failed("timeout"), for: "a", now: now)
        #expect(plan.nextDue == now + 5_000)
        _ = plan.record(.failed("timeout"), for: "a", now: now)
        _ = plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: now)
        _ = plan.record(.failed("timeout"), for: "a", now: now)
        #expect(plan.nextDue == now + 5_000)
    }

    @Test("an endpoint is forgotten after 2 answers in a row without it; reappearing resets the count")
    func forget() {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        #expect(plan.record(.records([Self.p2, Self.p1], ttlSeconds: 30), for: "a", now: 0).added == [Self.p1, Self.p2])
        #expect(plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 30_000).isNone)
        #expect(plan.record(.records([Self.p1, Self.p2], ttlSeconds: 30), for: "a", now: 60_000).isNone)
        #expect(plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 90_000).isNone)
        #expect(plan.endpoints == [Self.p1, Self.p2])
        let change = plan.record(.records([Self.p1, Self.p3], ttlSeconds: 30), for: "a", now: 120_000)
        #expect(change.added == [Self.p3] && change.removed == [Self.p2])
        #expect(plan.endpoints == [Self.p1, Self.p3])
        // Empty answers are answers: two of them forget everything.
        #expect(plan.record(.empty, for: "a", now: 150_000).isNone)
        #expect(plan.record(.empty, for: "a", now: 160_000).removed == [Self.p1, Self.p3])
        #expect(plan.endpoints.isEmpty)
    }

    @Test("failed lookups are not answers: they neither count as misses nor reset them")
    func failuresAreNotMisses() {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        _ = plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 0)
        for i in 1...5 {
            #expect(plan.record(.failed("SERVFAIL"), for: "a", now: Int64(i) * 1_000).isNone)
        }
        #expect(plan.endpoints == [Self.p1])
        #expect(plan.record(.empty, for: "a", now: 10_000).isNone)
        _ = plan.record(.failed("SERVFAIL"), for: "a", now: 20_000)
        #expect(plan.record(.empty, for: "a", now: 30_000).removed == [Self.p1])
    }

    @Test("a partial answer adds what it found and forgets nothing")
    func partialAnswers() {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        _ = plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 0)
        for i in 1...3 {
            let change = plan.record(.partial([Self.p2], ttlSeconds: 30), for: "a", now: Int64(i) * 30_000)
            #expect(change.removed.isEmpty && change.added == (i == 1 ? [Self.p2] : []))
        }
        #expect(plan.endpoints == [Self.p1, Self.p2])
        #expect(plan.nextDue == 120_000)
    }

    @Test("at most 256 endpoints per name: the excess is refused and counted; duplicates count once")
    func limit() {
        var plan = PeerDNSPlan(names: ["a", "b"], now: 0)
        let many = (1...300).map { Self.peer($0) }
        let change = plan.record(.records(many + [Self.p1], ttlSeconds: 30), for: "a", now: 0)
        #expect(change.added.count == 256 && change.refused == 44 && change.removed.isEmpty)
        #expect(Set(change.added) == Set(many.prefix(256)))
        #expect(plan.endpoints.count == 256)
        // Known endpoints stay without being refused; new ones are refused while the name is full.
        let again = plan.record(.records(many, ttlSeconds: 30), for: "a", now: 30_000)
        #expect(again.added.isEmpty && again.removed.isEmpty && again.refused == 44)
        // The limit is per name.
        let other = plan.record(.records(Array(many.suffix(44)), ttlSeconds: 30), for: "b", now: 30_000)
        #expect(Set(other.added) == Set(many.suffix(44)) && other.refused == 0)
        #expect(plan.endpoints.count == 300)
        #expect(plan.stats.refused == 88)
    }

    @Test("an endpoint under two names is removed only when neither lists it")
    func sharedEndpoint() {
        var plan = PeerDNSPlan(names: ["a", "b"], now: 0)
        #expect(plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 0).added == [Self.p1])
        #expect(plan.record(.records([Self.p1, Self.p2], ttlSeconds: 30), for: "b", now: 0).added == [Self.p2])
        _ = plan.record(.empty, for: "a", now: 10_000)
        #expect(plan.record(.empty, for: "a", now: 20_000).isNone)
        #expect(plan.endpoints == [Self.p1, Self.p2])
        _ = plan.record(.empty, for: "b", now: 30_000)
        #expect(plan.record(.empty, for: "b", now: 40_000).removed == [Self.p1, Self.p2])
        #expect(plan.endpoints.isEmpty)
    }

    @Test("stats count lookups, failures and refused endpoints; an unknown name changes nothing")
    func stats() {
        var plan = PeerDNSPlan(names: ["a"], now: 0)
        var tuning = PeerDNSPlan.Tuning()
        tuning.maxEndpointsPerName = 1
        var small = PeerDNSPlan(names: ["a"], tuning: tuning, now: 0)
        _ = plan.record(.records([Self.p1], ttlSeconds: 30), for: "a", now: 0)
        _ = plan.record(.failed("timeout"), for: "a", now: 1)
        _ = plan.record(.empty, for: "a", now: 2)
        _ = plan.record(.failed("timeout"), for: "a", now: 3)
        #expect(plan.record(.records([Self.p2], ttlSeconds: 30), for: "z", now: 4).isNone)
        #expect(plan.stats.lookups == 4 && plan.stats.failures == 2 && plan.stats.refused == 0)
        #expect(small.record(.records([Self.p1, Self.p2, Self.p3], ttlSeconds: 30), for: "a", now: 0).refused == 2)
        #expect(small.stats.lookups == 1 && small.stats.failures == 0 && small.stats.refused == 2)
    }
}

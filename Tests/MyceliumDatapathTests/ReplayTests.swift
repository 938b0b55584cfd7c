import MyceliumCore
import MyceliumCrypto
import MyceliumDatapath
import MyceliumRouting
import MyceliumTesting
import Testing

/// The two replay filters: the counter window of sessions (RFC 6479) and the nonce filter of
/// the static scheme.
@Suite struct ReplayTests {
    @Test("window: counters in order are accepted once each")
    func inOrder() {
        var w = ReplayWindow()
        var accepted = 0, refused = 0
        for c in UInt64(0)..<5000 { if w.accept(c) { accepted += 1 } }
        for c in UInt64(4990)..<5000 { if !w.accept(c) { refused += 1 } }
        #expect(accepted == 5000 && refused == 10)
    }

    @Test("window: reordered inside the window accepted, duplicates and too-old refused")
    func reordered() {
        var w = ReplayWindow()
        var results: [Bool] = []
        for c: UInt64 in [100, 98, 99, 97, 98, 3000] { results.append(w.accept(c)) }
        #expect(results == [true, true, true, true, false, true])
        // 3000 − 1984 = 1016: anything below is too old, even if never seen.
        let fresh1015 = w.isFresh(1015)
        #expect(!fresh1015)
        results = []
        for c: UInt64 in [1015, 1016, 1016, 2999, 1500] { results.append(w.accept(c)) }
        #expect(results == [false, true, false, true, true])
        #expect(w.highest == 3000)
    }

    @Test("window: a long jump forgets everything below; the ring of blocks wraps many times")
    func wrap() {
        var w = ReplayWindow()
        var seen: [UInt64] = []
        var c: UInt64 = 0
        var random = SeededRandom(seed: 9)
        for _ in 0..<20_000 {
            c += random.next() % 97
            if w.accept(c) { seen.append(c) }
        }
        var replayed = 0
        for old in seen.suffix(50) where w.accept(old) { replayed += 1 }
        #expect(replayed == 0 && seen.count > 19_000)
        var results: [Bool] = []
        for x in [c + 1_000_000, c, c + 1_000_000 - 64, c + 1_000_000 - 64] { results.append(w.accept(x)) }
        #expect(results == [true, false, true, false])
        var top = ReplayWindow()
        results = []
        for x in [UInt64.max - 1, UInt64.max, UInt64.max - 1] { results.append(top.accept(x)) }
        #expect(results == [true, true, false])
    }

    static let a = PublicKey(bytes: [UInt8](repeating: 1, count: 32))!
    static let b = PublicKey(bytes: [UInt8](repeating: 2, count: 32))!

    @Test("nonce filter: a nonce is refused again from the same sender only")
    func nonceFilter() {
        var f = NonceFilter()
        let t = Instant(milliseconds: 0)
        #expect(!f.seen(7, from: Self.a, now: t))
        f.record(7, from: Self.a, now: t)
        #expect(f.seen(7, from: Self.a, now: t) && !f.seen(7, from: Self.b, now: t))
    }

    @Test("nonce filter: remembered for at least one generation (time or count), at most two")
    func generations() {
        var f = NonceFilter(limits: .init(senders: 4, perGeneration: 100, spanMs: 1_000))
        f.record(1, from: Self.a, now: Instant(milliseconds: 0))
        f.record(2, from: Self.a, now: Instant(milliseconds: 999))
        f.record(3, from: Self.a, now: Instant(milliseconds: 1_000))  // rotates: 1, 2 now previous
        let t = Instant(milliseconds: 1_000)
        #expect(f.seen(1, from: Self.a, now: t) && f.seen(2, from: Self.a, now: t) && f.seen(3, from: Self.a, now: t))
        f.record(4, from: Self.a, now: Instant(milliseconds: 2_000))  // rotates again: 1, 2 gone
        #expect(!f.seen(1, from: Self.a, now: Instant(milliseconds: 2_000)) && f.seen(3, from: Self.a, now: Instant(milliseconds: 2_000)))
        for n in UInt64(100)..<400 { f.record(n, from: Self.b, now: Instant(milliseconds: 2_000)) }
        #expect(f.seen(250, from: Self.b, now: Instant(milliseconds: 2_000)) && f.seen(399, from: Self.b, now: Instant(milliseconds: 2_000)))
        #expect(!f.seen(150, from: Self.b, now: Instant(milliseconds: 2_000)), "two count-rotations forgot the first 100")
        #expect(f.fingerprintCount <= 2 * 100 + 2 * 2)
        // A quiet sender's generations age without a record: two spans from their start.
        #expect(f.seen(399, from: Self.b, now: Instant(milliseconds: 3_999)) && f.seen(250, from: Self.b, now: Instant(milliseconds: 3_999)))
        #expect(!f.seen(399, from: Self.b, now: Instant(milliseconds: 4_000)) && !f.seen(250, from: Self.b, now: Instant(milliseconds: 4_000)))
    }

    @Test("nonce filter: at most `senders` senders; an evicted one is counted")
    func senders() {
        var f = NonceFilter(limits: .init(senders: 2, perGeneration: 10, spanMs: 1_000))
        let c = PublicKey(bytes: [UInt8](repeating: 3, count: 32))!
        f.record(1, from: Self.a, now: Instant(milliseconds: 0))
        f.record(1, from: Self.b, now: Instant(milliseconds: 0))
        f.record(1, from: c, now: Instant(milliseconds: 0))
        #expect(f.senderCount == 2 && f.evictions == 1 && !f.seen(1, from: Self.a, now: Instant(milliseconds: 0)))
    }

    @Test("static scheme: the same captured packet is delivered once, a Rust sender included")
    func staticReplay() throws {
        let lab = DatapathLab(count: 2)  // sessions off: the static scheme, as between Rust nodes
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address))
        let captured = try #require(lab.pending.first)
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 1)
        for _ in 0..<3 { lab.inject(1, captured) }
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 1)
        #expect(lab.nodes[1].core.stats.replaysDropped == 3)
        // A new packet (new nonce) still goes through.
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address, sequence: 2))
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 2)
        #expect(lab.nodes[1].core.report.replaySenders == 1 && lab.nodes[1].core.report.replayFingerprints == 2)
    }

    @Test("1000 senders: every one is remembered and the fingerprints stay within the documented bound", arguments: [10, 2048])
    func thousandSenders(perSender: Int) {
        var f = NonceFilter()
        var random = SeededRandom(seed: 3)
        for s in 0..<1000 {
            let sender = PublicKey(bytes: [UInt8(s >> 8), UInt8(s & 0xFF)] + [UInt8](repeating: 9, count: 30))!
            for _ in 0..<perSender { f.record(random.next(), from: sender, now: Instant(milliseconds: 0)) }
        }
        #expect(f.senderCount == 1000)
        #expect(f.fingerprintCount <= 1000 * 2 * NonceFilter.Limits.standard.perGeneration)
    }
}

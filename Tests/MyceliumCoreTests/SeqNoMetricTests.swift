import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct SeqNoMetricTests {
    @Test("modular seqno comparison (vectors)")
    func seqnoVectors() throws {
        for c in Vectors.vector("seqno.compare")["cases"].array {
            let a = SeqNo(UInt16(try #require(c["a"].int)))
            let b = SeqNo(UInt16(try #require(c["b"].int)))
            #expect(a.isLess(than: b) == c["a_lt_b"].bool, "\(a) < \(b)")
            #expect(b.isLess(than: a) == c["b_lt_a"].bool, "\(b) < \(a)")
            #expect(b.isGreater(than: a) == c["b_gt_a"].bool, "\(b) > \(a)")
            #expect(a.isGreater(than: b) == c["a_gt_b"].bool, "\(a) > \(b)")
        }
    }

    @Test("seqno order is antisymmetric everywhere and wraps")
    func seqnoProperties() {
        var rng = SeededRandom(seed: 3)
        for _ in 0..<10_000 {
            let a = SeqNo(UInt16.random(in: 0...UInt16.max, using: &rng))
            let b = SeqNo(UInt16.random(in: 0...UInt16.max, using: &rng))
            #expect(a.isLess(than: b) == b.isGreater(than: a))
            #expect(!(a.isLess(than: b) && a.isGreater(than: b)))
        }
        #expect(SeqNo(65535).isLess(than: SeqNo(0)))
        #expect(SeqNo(65535).incremented() == SeqNo(0))
        #expect(!SeqNo(5).isLess(than: SeqNo(5)))
    }

    @Test("metric addition saturates below infinity; infinity absorbs")
    func metric() {
        #expect(Metric(10) + Metric(20) == Metric(30))
        #expect(Metric(0xFFF0) + Metric(0x20) == Metric.maxFinite)
        #expect(Metric(0xFFFE) + Metric(1) == Metric.maxFinite)
        #expect(Metric(0x8000) + Metric(0x7FFF) == Metric.maxFinite)
        #expect(Metric.infinite + Metric(0) == .infinite)
        #expect(Metric(0) + Metric.infinite == .infinite)
        #expect(Metric.infinite.isInfinite)
        #expect(!Metric.maxFinite.isInfinite)
        #expect(Metric.infinite.description == "infinite")
    }
}

/// A 16-bit Babel sequence number with RFC 8966 modular ordering (spec §5.3).
///
/// Not `Comparable`: the order is not total (values exactly 32768 apart are unordered).
public struct SeqNo: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// `self < other` in modular order: different, and `other − self (mod 2^16) < 32768`.
    public func isLess(than other: SeqNo) -> Bool {
        rawValue != other.rawValue && other.rawValue &- rawValue < 0x8000
    }

    /// `self > other` in modular order: different, and `other − self (mod 2^16) > 32768`.
    public func isGreater(than other: SeqNo) -> Bool {
        rawValue != other.rawValue && other.rawValue &- rawValue > 0x8000
    }

    public func incremented() -> SeqNo { SeqNo(rawValue &+ 1) }

    public var description: String { String(rawValue) }
}

/// A 16-bit route metric; 0xFFFF is infinite (a retraction). Addition saturates (spec §5.3).
public struct Metric: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let infinite = Metric(0xFFFF)
    public static let zero = Metric(0)
    /// The largest finite metric an addition can produce.
    public static let maxFinite = Metric(0xFFFE)

    public var isInfinite: Bool { rawValue == 0xFFFF }

    /// Any infinite operand gives infinity; finite sums saturate at 0xFFFE.
    public static func + (a: Metric, b: Metric) -> Metric {
        if a.isInfinite || b.isInfinite { return .infinite }
        let (sum, overflow) = a.rawValue.addingReportingOverflow(b.rawValue)
        return overflow || sum == 0xFFFF ? .maxFinite : Metric(sum)
    }

    public static func < (a: Metric, b: Metric) -> Bool { a.rawValue < b.rawValue }

    public var description: String { isInfinite ? "infinite" : String(rawValue) }
}

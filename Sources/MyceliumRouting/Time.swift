/// A point on the router's clock, in milliseconds. The router has no clock of its own: every
/// event carries `now`, so a simulation can run 1000 nodes on virtual time and replay exactly.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static let zero = Instant(milliseconds: 0)

    public static func < (a: Instant, b: Instant) -> Bool { a.milliseconds < b.milliseconds }
    public static func + (a: Instant, ms: Int64) -> Instant { Instant(milliseconds: a.milliseconds + ms) }
    public static func - (a: Instant, b: Instant) -> Int64 { a.milliseconds - b.milliseconds }

    public var description: String { "\(Double(milliseconds) / 1000)s" }
}

/// Opaque handle of a neighbour (one peer connection), assigned by whoever drives the router.
public struct NeighbourId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: NeighbourId, b: NeighbourId) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "n\(rawValue)" }
}

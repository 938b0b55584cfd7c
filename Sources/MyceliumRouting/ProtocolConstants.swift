public import MyceliumCore

/// Timers and limits fixed by the Mycelium protocol (spec §5.5). Changing any of these changes
/// behaviour Rust peers rely on; tuning knobs of our own live in `RouterTuning`.
public enum ProtocolConstants {
    public static let helloIntervalMs: Int64 = 20_000
    /// Interval field of the Hellos we send (centiseconds).
    public static let helloIntervalCs: UInt16 = 2000
    /// Interval field of the IHUs we send (centiseconds); IHUs are reply-only.
    public static let ihuIntervalCs: UInt16 = 6000
    public static let deadPeerThresholdMs: Int64 = 43_000
    public static let deadPeerCheckIntervalMs: Int64 = 10_000
    /// Interval advertised in our Updates (300 s, in centiseconds).
    public static let updateIntervalCs: UInt16 = 30_000
    /// How often our own /64 is re-announced to every neighbour.
    public static let routePropagationIntervalMs: Int64 = 300_000
    public static let retractedRouteHoldMs: Int64 = 6_000
    public static let sourceHoldMs: Int64 = 30 * 60_000
    public static let seqnoBumpTimeoutMs: Int64 = 4_000
    public static let seqnoRequestDedupMs: Int64 = 60_000
    public static let routeQueryTimeoutMs: Int64 = 15_000
    /// A used route this close to expiry is refreshed with a RouteRequest.
    public static let routeAlmostExpiredMs: Int64 = 15_000
    /// RouteRequests whose generation + 1 reaches this are not forwarded.
    public static let maxRouteRequestGeneration: UInt8 = 16
    public static let bigMetricChange: Int = 10
    public static let significantMetricImprovement: Int = 10
    /// Initial value of the Hello→IHU delay average (ms): new neighbours look expensive.
    public static let initialLinkDelayMs: UInt16 = 1000

    /// Route hold time for an Update: 3.5 × the advertised interval, or 6 s for a retraction.
    /// The interval is in centiseconds, so 1 cs = 10 ms and 3.5 × 10 = 35 ms per cs.
    public static func routeHoldMs(intervalCs: UInt16, metric: Metric) -> Int64 {
        metric.isInfinite ? retractedRouteHoldMs : Int64(intervalCs) * 35
    }
}

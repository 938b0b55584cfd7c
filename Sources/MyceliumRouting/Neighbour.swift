import MyceliumCore

/// What the router knows of one peer connection (spec §5.4).
struct Neighbour {
    let id: NeighbourId
    /// Per-transport cost added to the measured delay (spec §2.1): TCP v6 10, v4 15, …
    let staticCost: UInt16
    var helloSeqno = SeqNo(0)
    var lastHelloSent: Instant?
    /// Set when an IHU answered the last Hello, so repeated or unsolicited IHUs are not
    /// measured against a stale Hello (Rust would; it only inflates the cost).
    var helloAnswered = true
    var lastIHU: Instant
    /// EWMA of the Hello→IHU delay in ms: (9·old + sample) / 10.
    var smoothedDelay: UInt16 = ProtocolConstants.initialLinkDelayMs
    /// Route entries this neighbour holds in the routing table (`RouterLimits.routesPerNeighbour`).
    var routeCount = 0
    var buckets: ControlBuckets

    init(id: NeighbourId, staticCost: UInt16, now: Instant) {
        self.id = id
        self.staticCost = staticCost
        self.lastIHU = now
        self.buckets = ControlBuckets(now: now)
    }

    /// The cost of reaching anything through this neighbour, before the route's own metric.
    var linkCost: Metric { Metric(smoothedDelay) + Metric(staticCost) }

    mutating func recordIHU(now: Instant) {
        lastIHU = now
        guard let sent = lastHelloSent, !helloAnswered else { return }
        helloAnswered = true
        // Saturated: a reply after more than 65 s must read as slow, not wrap to fast.
        let sample = UInt16(clamping: max(0, now - sent))
        smoothedDelay = UInt16((9 * UInt32(smoothedDelay) + UInt32(sample)) / 10)
    }
}

/// Static link costs by transport (spec §2.1).
public enum LinkCost {
    public static let tcpIPv6: UInt16 = 10
    public static let tcpIPv4: UInt16 = 15
    public static let quicIPv6: UInt16 = 7
    public static let quicIPv4: UInt16 = 12
    public static let vsock: UInt16 = 5
}

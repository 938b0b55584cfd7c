public import MyceliumCore
public import MyceliumRouting
public import NIOCore

/// The router on its own event loop: every peer channel hands it control packets, it performs
/// the router's actions (sends, disconnects), keeps its one timer armed, and publishes new
/// forwarding tables.
///
/// Confinement: all state is touched on `loop` only (checked in debug builds). Peer channels
/// live on the same loop, so no packet crosses a thread on the control path.
public final class RouterService: @unchecked Sendable {
    public let loop: any EventLoop
    /// Packet arrays shared by everything on `loop` that reads or writes packets (TUN reads,
    /// frame decoders, the datapath): confined to `loop`, as this class is.
    public let packetPool = PacketPool()
    /// Batch buffers of the peer connections on `loop`, reused once written (confined likewise).
    public let batchBuffers = BatchBufferPool()
    private var router: Router
    private var peers: [NeighbourId: any Channel] = [:]
    /// Where data for a neighbour goes without crossing its pipeline (its framing handler).
    private var dataSinks: [NeighbourId: (DataPacket) -> Void] = [:]
    private var nextNeighbour: UInt64 = 1
    private var scheduledWake: Instant?
    private var wakeTask: Scheduled<Void>?
    private var actions: [RouterAction] = []
    /// Called on `loop` with every new forwarding table.
    public var onForwardingTable: ((ForwardingTable) -> Void)?
    /// Called on `loop` for route events the datapath's queues care about.
    public var onRouteEvent: ((RouterAction) -> Void)?
    /// Called on `loop` at the start of every `flush()` (the datapath's TUN writes).
    public var beforeFlush: (() -> Void)?
    /// Called on `loop` when the router refused something a neighbour sent (audit log).
    public var onRefused: ((NeighbourId, Refusal) -> Void)?

    public init(routerId: RouterId, loop: any EventLoop) {
        self.loop = loop
        self.router = Router(routerId: routerId, now: RouterService.now())
    }

    /// Monotonic milliseconds: the router's time.
    public static func now() -> Instant {
        Instant(milliseconds: Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000))
    }

    // MARK: entry points (on `loop`)

    /// Registers a connected peer; returns the handle its packets are reported with.
    /// `dataSink`, when given, takes the connection's data packets instead of `channel.write`.
    public func attach(_ channel: any Channel, staticCost: UInt16, dataSink: ((DataPacket) -> Void)? = nil) -> NeighbourId {
        loop.preconditionInEventLoop()
        let id = NeighbourId(nextNeighbour)
        nextNeighbour += 1
        peers[id] = channel
        dataSinks[id] = dataSink
        apply(.neighbourAdded(id, staticCost: staticCost))
        return id
    }

    public func detach(_ id: NeighbourId) {
        loop.preconditionInEventLoop()
        dataSinks[id] = nil
        guard peers.removeValue(forKey: id) != nil else { return }
        apply(.neighbourRemoved(id))
    }

    public func received(_ tlv: ControlTLV, from id: NeighbourId) {
        loop.preconditionInEventLoop()
        apply(.received(tlv, from: id))
    }

    public func routeNeeded(_ address: IPv6Address) {
        loop.preconditionInEventLoop()
        apply(.routeNeeded(address))
    }

    /// A read-only look at the router (API, tests), on `loop`.
    public func inspect<T>(_ body: (Router) -> T) -> T {
        loop.preconditionInEventLoop()
        return body(router)
    }

    public var peerCount: Int { peers.count }

    /// How Rust's API names a route's next hop: `TCP [local]:port <-> [remote]:port`.
    public func connectionDescription(of id: NeighbourId) -> String? {
        loop.preconditionInEventLoop()
        guard let channel = peers[id] else { return nil }
        return "TCP \(Self.socketText(channel.localAddress)) <-> \(Self.socketText(channel.remoteAddress))"
    }

    /// Rust's `SocketAddr` text: `1.2.3.4:9651` or `[2001:db8::1]:9651`; v4-mapped shown as v6.
    static func socketText(_ address: SocketAddress?) -> String {
        address.flatMap(PeerManager.endpoint(of:))?.socketAddress ?? "unknown"
    }

    /// Connections written to since the last flush: a handful, so a list (no hash per packet).
    private var unflushed: [NeighbourId] = []

    public enum SendResult: Sendable {
        case queued
        /// No such neighbour (any more).
        case gone
        /// The connection's outbox is above its high-water mark: the peer is not reading as
        /// fast as we write. Data is dropped here (the overlay's TCP flows back off) instead of
        /// growing the outbox without bound; control packets still go (they are rate-limited).
        case busy
    }

    /// Queues a data packet on a neighbour's connection. Nothing reaches the socket until
    /// `flush()`: the datapath flushes once per batch, not once per packet.
    @discardableResult
    public func send(_ packet: Packet, to id: NeighbourId) -> SendResult {
        loop.preconditionInEventLoop()
        guard let channel = peers[id] else { return .gone }
        guard channel.isWritable else { return .busy }
        if case let .data(data) = packet, let sink = dataSinks[id] {
            sink(data)
        } else {
            channel.write(packet, promise: nil)
        }
        if unflushed.last != id, !unflushed.contains(id) { unflushed.append(id) }
        return .queued
    }

    /// The remote address of a neighbour's connection, for log lines.
    public func remoteDescription(of id: NeighbourId) -> String {
        loop.preconditionInEventLoop()
        return Self.socketText(peers[id]?.remoteAddress)
    }

    /// Flushes every connection written to since the last flush.
    public func flush() {
        loop.preconditionInEventLoop()
        beforeFlush?()
        for id in unflushed { peers[id]?.flush() }
        unflushed.removeAll(keepingCapacity: true)
    }

    // MARK: publishing the forwarding table

    /// The router's table changed since the datapath last got it.
    public private(set) var tablePending = false
    private var publishScheduled = false

    /// A change is published once per loop turn, not once per Update: a table is a snapshot
    /// of every route, and rebuilding it for each of a flood's 10 000 Updates was quadratic
    /// work (and gigabytes of short-lived snapshots). The datapath asks for the pending table
    /// (`publishPendingTable`) before it routes a packet, and before it releases packets queued
    /// for an acquired route, so it never routes with a stale one.
    private func tableChanged() {
        tablePending = true
        guard !publishScheduled else { return }
        publishScheduled = true
        loop.execute { [self] in
            publishScheduled = false
            publishPendingTable()
        }
    }

    /// Hands the datapath the current table if it changed since the last one.
    public func publishPendingTable() {
        loop.preconditionInEventLoop()
        guard tablePending else { return }
        tablePending = false
        onForwardingTable?(router.forwardingTable())
    }

    // MARK: performing actions

    private func apply(_ event: RouterEvent) {
        actions.removeAll(keepingCapacity: true)
        router.handle(event, now: RouterService.now(), into: &actions)
        if actions.contains(where: { if case .forwardingTableChanged = $0 { true } else { false } }) {
            tableChanged()
        }
        var flush: Set<NeighbourId> = []
        for action in actions {
            switch action {
            case let .send(tlv, to):
                guard let channel = peers[to] else { continue }
                channel.write(Packet.control(tlv), promise: nil)
                flush.insert(to)
            case let .disconnect(id):
                peers[id]?.close(promise: nil)
                peers[id] = nil
                dataSinks[id] = nil
            case .forwardingTableChanged:
                break  // published above
            case .routeAcquired, .routeLost, .queryFailed:
                onRouteEvent?(action)
            case let .refused(id, why):
                onRefused?(id, why)
            }
        }
        for id in flush { peers[id]?.flush() }
        armTimer()
    }

    private func armTimer() {
        let wake = router.nextWakeUp
        if let s = scheduledWake, s <= wake { return }
        wakeTask?.cancel()
        scheduledWake = wake
        let delay = max(0, wake - RouterService.now())
        wakeTask = loop.scheduleTask(in: .milliseconds(delay)) { [self] in
            scheduledWake = nil
            apply(.timer)
        }
    }
}

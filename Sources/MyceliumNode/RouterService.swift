public import MyceliumCore
public import MyceliumRouting
public import NIOCore
import Synchronization

/// The router on its own loop, beside the datapath's: peer channels hand it control packets,
/// it performs the router's actions (sends, disconnects), keeps its one timer armed, and
/// publishes new forwarding tables to the datapath.
///
/// Two loops (the node): the peer registry (channels, their sends and flushes, the packet and
/// batch pools) lives on `loop`, the datapath's; the routing state on `routerLoop`. Control
/// packets, new and gone neighbours and route requests cross from `loop` to `routerLoop`
/// (`toRouter`); the router takes them `crossingChunk` at a time, and after each chunk the new
/// table and the chunk's sends and route events cross back in one task, table first (`drain`),
/// so the datapath never sees a route event before the table with that route. A neighbour with
/// `neighbourQuota` control packets waiting stops being read (TCP pushes back on it, as it did
/// when the router ran inline) until half have been taken; `crossingLimit` bounds the whole, and
/// beyond it control packets are dropped and counted. A route flood then costs the router's
/// core, not the packets' latency.
///
/// One loop (tests, and what an embedder may choose): `routerLoop` is `loop`, and every call
/// runs inline, in order, as in a single-threaded router.
///
/// Confinement: the registry's state is touched on `loop` only, the router's on `routerLoop`
/// only (asserted at each entry point); the crossings are behind `Mutex`es.
public final class RouterService: @unchecked Sendable {
    /// The datapath's loop: peer connections, their writes, the packet pools.
    public let loop: any EventLoop
    /// The router's loop (`loop` itself when the service was built with one).
    public let routerLoop: any EventLoop
    /// True when `routerLoop` is `loop`: calls run inline, no crossings.
    public let sharedLoop: Bool

    // MARK: on `loop`

    /// Packet arrays shared by everything on `loop` that reads or writes packets (TUN reads,
    /// frame decoders, the datapath): confined to `loop`, as this class is.
    public let packetPool = PacketPool()
    /// Batch buffers of the peer connections on `loop`, reused once written (confined likewise).
    public let batchBuffers = BatchBufferPool()
    // `dataSinks`: where data for a neighbour goes without crossing its pipeline (its framing
    // handler). `lastSend`: the neighbour last sent to, its channel and data sink: a batch's
    // packets go to one neighbour in runs, and two dictionary lookups per packet were 2 % of a
    // sending daemon's CPU; forgotten whenever a neighbour comes or goes.
    //
    // These and `unflushed` are read for every packet sent: in release builds exempt from
    // run-time exclusivity checks, sound because they are touched on `loop` only (asserted) and
    // `send` holds no access across the sink it calls. Debug builds (the tests) keep the checks.
    #if DEBUG
    private var peers: [NeighbourId: any Channel] = [:] {
        didSet { lastSend = nil }
    }
    private var dataSinks: [NeighbourId: (DataPacket) -> Void] = [:] {
        didSet { lastSend = nil }
    }
    private var lastSend: (id: NeighbourId, channel: any Channel, sink: ((DataPacket) -> Void)?)?
    #else
    @exclusivity(unchecked) private var peers: [NeighbourId: any Channel] = [:] {
        didSet { lastSend = nil }
    }
    @exclusivity(unchecked) private var dataSinks: [NeighbourId: (DataPacket) -> Void] = [:] {
        didSet { lastSend = nil }
    }
    @exclusivity(unchecked) private var lastSend: (id: NeighbourId, channel: any Channel, sink: ((DataPacket) -> Void)?)?
    #endif
    private var nextNeighbour: UInt64 = 1
    /// Called on `loop` with every new forwarding table.
    public var onForwardingTable: ((ForwardingTable) -> Void)?
    /// Called on `loop` for route events the datapath's queues care about.
    public var onRouteEvent: ((RouterAction) -> Void)?
    /// Called on `loop` at the start of every `flush()` (the datapath's TUN writes).
    public var beforeFlush: (() -> Void)?
    /// Called on `loop` when the router refused something a neighbour sent (audit log).
    public var onRefused: ((NeighbourId, Refusal) -> Void)?

    // MARK: on `routerLoop`

    private var router: Router
    private var scheduledWake: Instant?
    private var wakeTask: Scheduled<Void>?
    private var actions: [RouterAction] = []
    /// Two loops: what the router did this turn, for `loop` (sends, disconnects, events).
    private var outbox: [RouterAction] = []
    private var drainScheduled = false

    // MARK: crossings (two loops only)

    private struct Crossing {
        /// Waiting from `head` on (taken from the front, a chunk at a time).
        var events: [RouterEvent] = []
        var head = 0
        /// Control packets waiting, per neighbour (for backpressure).
        var waiting: [NeighbourId: Int] = [:]
        /// A take is scheduled on `routerLoop`.
        var scheduled = false
        var count: Int { events.count - head }
    }
    private let crossing = Mutex(Crossing())
    /// Control packets and other router events dropped because `crossingLimit` were waiting.
    private let crossingDrops = Atomic<Int>(0)
    /// Set by `shutdown()`: nothing crosses any more.
    private let closed = Atomic<Bool>(false)
    /// Neighbours not being read because their quota of control packets waits (on `loop`).
    private var paused: Set<NeighbourId> = []

    public init(routerId: RouterId, loop: any EventLoop, routerLoop: (any EventLoop)? = nil) {
        self.loop = loop
        self.routerLoop = routerLoop ?? loop
        sharedLoop = routerLoop.map { $0 === loop } ?? true
        self.router = Router(routerId: routerId, now: RouterService.now())
    }

    /// Control packets one neighbour may have waiting to cross before its connection stops
    /// being read (resumed at half). A neighbour's whole table arrives as a burst of Updates,
    /// thousands when a node joins a large network: the quota delays the rest of such a burst,
    /// it never drops it.
    public static let neighbourQuota = 4096
    /// Router events waiting to cross, in all (about 100 bytes each: ~6 MiB). Only reached when
    /// many neighbours flood at once (each may exceed its quota by what one read held); beyond
    /// it control packets and route requests are dropped and counted, never neighbours coming
    /// or going, and never a neighbour's first `fairShare`.
    public static let crossingLimit = 65_536
    /// Control packets a neighbour may have waiting that cross even when `crossingLimit` wait:
    /// the flooders filled the crossing, so a quiet neighbour's Hellos and IHUs must not be
    /// dropped with their excess (its link would be declared dead and its routes lost). Bounds
    /// the whole at `crossingLimit` + neighbours × `fairShare`.
    public static let fairShare = 64
    /// Events the router applies in one task before the table and actions cross back (and its
    /// timer and health probe get their turn).
    public static let crossingChunk = 1024

    /// Monotonic milliseconds: the router's time.
    public static func now() -> Instant {
        Instant(milliseconds: Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000))
    }

    /// Router events dropped at the crossing because it was full (a flood the router could not
    /// keep up with).
    public var droppedAtCrossing: Int { crossingDrops.load(ordering: .relaxed) }

    // MARK: entry points (on `loop`)

    /// Registers a connected peer; returns the handle its packets are reported with.
    /// `dataSink`, when given, takes the connection's data packets instead of `channel.write`.
    public func attach(_ channel: any Channel, staticCost: UInt16, dataSink: ((DataPacket) -> Void)? = nil) -> NeighbourId {
        loop.preconditionInEventLoop()
        let id = NeighbourId(nextNeighbour)
        nextNeighbour += 1
        peers[id] = channel
        dataSinks[id] = dataSink
        toRouter(.neighbourAdded(id, staticCost: staticCost))
        return id
    }

    public func detach(_ id: NeighbourId) {
        loop.preconditionInEventLoop()
        dataSinks[id] = nil
        paused.remove(id)
        guard peers.removeValue(forKey: id) != nil else { return }
        toRouter(.neighbourRemoved(id))
    }

    public func received(_ tlv: ControlTLV, from id: NeighbourId) {
        loop.preconditionInEventLoop()
        toRouter(.received(tlv, from: id))
    }

    public func routeNeeded(_ address: IPv6Address) {
        loop.preconditionInEventLoop()
        toRouter(.routeNeeded(address))
    }

    /// A read-only look at the router (API, tests), on `routerLoop`.
    public func inspect<T>(_ body: (Router) -> T) -> T {
        routerLoop.preconditionInEventLoop()
        return body(router)
    }

    /// Runs `body` on the router's loop with the router (read-only).
    public func inspectRouter<T: Sendable>(_ body: @escaping @Sendable (Router) -> T) -> EventLoopFuture<T> {
        routerLoop.submit { [self] in body(router) }
    }

    public var peerCount: Int { peers.count }

    /// The neighbours connected now (on the loop).
    public var neighbourIds: [NeighbourId] {
        loop.preconditionInEventLoop()
        return Array(peers.keys)
    }

    /// How Rust's API names a route's next hop: `TCP [local]:port <-> [remote]:port`, or
    /// `QUIC -> [remote]:port`.
    public func connectionDescription(of id: NeighbourId) -> String? {
        loop.preconditionInEventLoop()
        guard let channel = peers[id] else { return nil }
        if channel is QUICPeerChannel { return "QUIC -> \(Self.socketText(channel.remoteAddress))" }
        return "TCP \(Self.socketText(channel.localAddress)) <-> \(Self.socketText(channel.remoteAddress))"
    }

    /// Rust's `SocketAddr` text: `1.2.3.4:9651` or `[2001:db8::1]:9651`; v4-mapped shown as v6.
    static func socketText(_ address: SocketAddress?) -> String {
        address.flatMap(PeerManager.endpoint(of:))?.socketAddress ?? "unknown"
    }

    /// Connections written to since the last flush: a handful, so a list (no hash per packet).
    /// Unchecked in release builds, as `peers` is.
    #if DEBUG
    private var unflushed: [NeighbourId] = []
    #else
    @exclusivity(unchecked) private var unflushed: [NeighbourId] = []
    #endif

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
        let channel: any Channel, dataSink: ((DataPacket) -> Void)?
        if let last = lastSend, last.id == id {
            (channel, dataSink) = (last.channel, last.sink)
        } else {
            guard let known = peers[id] else { return .gone }
            (channel, dataSink) = (known, dataSinks[id])
            lastSend = (id, channel, dataSink)
        }
        guard channel.isWritable else { return .busy }
        if case let .data(data) = packet, let sink = dataSink {
            sink(data)
        } else {
            channel.write(packet, promise: nil)
        }
        if unflushed.last != id, !unflushed.contains(id) { unflushed.append(id) }
        return .queued
    }

    /// A neighbour's connection (on `loop`).
    public func channel(of id: NeighbourId) -> (any Channel)? {
        loop.preconditionInEventLoop()
        return peers[id]
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

    /// The router's table changed since the datapath last got it (one loop only; with two the
    /// table is pushed, so this is false for `loop`).
    public var tablePending: Bool { sharedLoop && tableChangedSincePublished }
    private var tableChangedSincePublished = false
    private var publishScheduled = false

    /// A change is published once per router turn, not once per Update: a table is a snapshot
    /// of every route, and rebuilding it for each of a flood's 10 000 Updates was quadratic
    /// work (and gigabytes of short-lived snapshots). One loop: the datapath asks for the
    /// pending table (`publishPendingTable`) before it routes a packet, and before it releases
    /// packets queued for an acquired route, so it never routes with a stale one. Two loops:
    /// the table crosses with the turn's route events (`drain`).
    private func tableChanged() {
        tableChangedSincePublished = true
        if sharedLoop {
            guard !publishScheduled else { return }
            publishScheduled = true
            loop.execute { [self] in
                publishScheduled = false
                publishPendingTable()
            }
        } else {
            scheduleDrain()
        }
    }

    /// Hands the datapath the current table if it changed since the last one (one loop; with
    /// two, the table is already on its way and this does nothing).
    public func publishPendingTable() {
        loop.preconditionInEventLoop()
        guard sharedLoop, tableChangedSincePublished else { return }
        tableChangedSincePublished = false
        onForwardingTable?(router.forwardingTable())
    }

    // MARK: crossings

    /// An event for the router: inline with one loop; else queued for `routerLoop`. A control
    /// packet counts against its neighbour's quota (reaching it pauses reading that neighbour);
    /// while `crossingLimit` wait, route requests and the control packets of neighbours with
    /// `fairShare` or more waiting are dropped (counted); neighbours coming and going always
    /// cross.
    private func toRouter(_ event: RouterEvent) {
        if sharedLoop {
            apply(event)
            return
        }
        guard !closed.load(ordering: .relaxed) else { return }
        var from: NeighbourId?
        var droppable = false
        switch event {
        case let .received(_, id): (from, droppable) = (id, true)
        case .routeNeeded: droppable = true
        default: break
        }
        let outcome: (schedule: Bool, pause: Bool)? = crossing.withLock { c in
            if droppable, c.count >= RouterService.crossingLimit,
               from.map({ c.waiting[$0, default: 0] >= RouterService.fairShare }) ?? true { return nil }
            c.events.append(event)
            var pause = false
            if let from {
                let waiting = c.waiting[from, default: 0] + 1
                c.waiting[from] = waiting
                pause = waiting == RouterService.neighbourQuota
            }
            defer { c.scheduled = true }
            return (!c.scheduled, pause)
        }
        guard let outcome else {
            crossingDrops.add(1, ordering: .relaxed)
            return
        }
        if outcome.pause, let from, let channel = peers[from] {
            // The rest of what this read held still comes; then TCP holds the sender back.
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            paused.insert(from)
        }
        if outcome.schedule { routerLoop.execute { [self] in takeCrossing() } }
    }

    /// On `routerLoop`: up to `crossingChunk` events, then the drain (scheduled by what they
    /// did) and the next chunk, in that order.
    private func takeCrossing() {
        guard !closed.load(ordering: .relaxed) else { return }
        var resume: [NeighbourId] = []
        let (chunk, more) = crossing.withLock { c in
            let n = min(c.count, RouterService.crossingChunk)
            let chunk = Array(c.events[c.head..<(c.head + n)])
            c.head += n
            if c.head == c.events.count {
                c.events.removeAll(keepingCapacity: true)
                c.head = 0
            } else if c.head >= 4 * RouterService.crossingChunk, c.head * 2 >= c.events.count {
                c.events.removeFirst(c.head)
                c.head = 0
            }
            for event in chunk {
                guard case let .received(_, id) = event, let waiting = c.waiting[id] else { continue }
                c.waiting[id] = waiting > 1 ? waiting - 1 : nil
                if waiting - 1 == RouterService.neighbourQuota / 2 { resume.append(id) }
            }
            c.scheduled = c.count > 0
            return (chunk, c.scheduled)
        }
        for event in chunk { apply(event) }
        if !resume.isEmpty {
            let ids = resume
            loop.execute { [self] in resumeReading(ids) }
        }
        if more { routerLoop.execute { [self] in takeCrossing() } }
    }

    /// On `loop`: neighbours whose waiting control packets fell to half their quota are read again.
    private func resumeReading(_ ids: [NeighbourId]) {
        for id in ids where paused.remove(id) != nil {
            try? peers[id]?.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        }
    }

    /// Stops the crossings (the node stops): nothing more is handed from one loop to the other,
    /// and the router's timer is cancelled. Call before the loops shut down.
    public func shutdown() {
        closed.store(true, ordering: .relaxed)
        routerLoop.execute { [self] in
            wakeTask?.cancel()
            wakeTask = nil
        }
    }

    private func scheduleDrain() {
        guard !drainScheduled, !closed.load(ordering: .relaxed) else { return }
        drainScheduled = true
        routerLoop.execute { [self] in drain() }
    }

    /// On `routerLoop`, once per turn with something to hand over: the table (if it changed)
    /// and the turn's actions cross to `loop` in one task, the table first.
    private func drain() {
        drainScheduled = false
        var table: ForwardingTable?
        if tableChangedSincePublished {
            tableChangedSincePublished = false
            table = router.forwardingTable()
        }
        var batch: [RouterAction] = []
        swap(&batch, &outbox)
        guard table != nil || !batch.isEmpty, !closed.load(ordering: .relaxed) else { return }
        loop.execute { [self, table, batch] in
            if let table { onForwardingTable?(table) }
            perform(batch)
        }
    }

    // MARK: performing actions

    /// On `routerLoop`.
    private func apply(_ event: RouterEvent) {
        routerLoop.preconditionInEventLoop()
        actions.removeAll(keepingCapacity: true)
        router.handle(event, now: RouterService.now(), into: &actions)
        var changed = false
        for action in actions {
            if case .forwardingTableChanged = action {
                changed = true
            } else if !sharedLoop {
                outbox.append(action)
            }
        }
        if changed { tableChanged() }
        armTimer()
        if sharedLoop {
            perform(actions)
        } else if !outbox.isEmpty {
            scheduleDrain()
        }
    }

    /// On `loop`: the router's sends, disconnects and events.
    private func perform(_ actions: [RouterAction]) {
        loop.preconditionInEventLoop()
        var flush: [NeighbourId] = []
        for action in actions {
            switch action {
            case let .send(tlv, to):
                guard let channel = peers[to] else { continue }
                channel.write(Packet.control(tlv), promise: nil)
                if !flush.contains(to) { flush.append(to) }
            case let .disconnect(id):
                peers[id]?.close(promise: nil)
                peers[id] = nil
                dataSinks[id] = nil
            case .forwardingTableChanged:
                break  // published by `tableChanged`
            case .routeAcquired, .routeLost, .queryFailed:
                onRouteEvent?(action)
            case let .refused(id, why):
                onRefused?(id, why)
            }
        }
        for id in flush { peers[id]?.flush() }
    }

    private func armTimer() {
        let wake = router.nextWakeUp
        if let s = scheduledWake, s <= wake { return }
        wakeTask?.cancel()
        scheduledWake = wake
        let delay = max(0, wake - RouterService.now())
        wakeTask = routerLoop.scheduleTask(in: .milliseconds(delay)) { [self] in
            scheduledWake = nil
            apply(.timer)
        }
    }
}

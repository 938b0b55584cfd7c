public import MyceliumCore
public import MyceliumCrypto
public import MyceliumDatapath
public import MyceliumRouting
public import MyceliumSystem
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The data plane's shell on the datapath's loop: feeds `DatapathCore` (the rules, spec §4) and
/// performs its actions.
///
/// Flow: TUN read batch (`TunReadHandler`, on this loop) → `fromTun` ×n → `flush` | peer read → `fromPeer` ×n → read complete →
/// `flush`. Actions: `.toPeer` → the connection's outbox (flushed once per batch; a full outbox
/// drops, counted `peer_busy`), `.toTun` → pending writes, `.routeNeeded` → router, `.audit` →
/// rate-limited audit line. `flush` writes the pending TUN packets: with offloads, consecutive
/// segments of a TCP flow coalesced (GRO) into one write with a `virtio_net_hdr`.
///
/// Confinement: every method runs on the datapath's loop, `RouterService.loop`
/// (`preconditionInEventLoop` at each entry point); `@unchecked Sendable` only so the TUN channel and peers can capture it in closures they
/// run on that loop.
public final class Datapath: @unchecked Sendable {
    private let service: RouterService
    private let tun: TunDevice?
    private let audit: AuditLog?
    // `performing`: the actions being performed (swapped with `actions`, so both keep their
    // capacity). `pendingTun`: IPv6 packets for the TUN, written at the end of the batch
    // (bounded: one batch's worth). `routeRequests`: route requests of the actions performed,
    // asked once the actions are done: the router may answer at once with a route event, which
    // re-enters the datapath (`routeEvent`).
    //
    // In release builds this state, which every packet touches, is exempt from run-time
    // exclusivity checks (a call into the runtime and a search of the thread's access set per
    // access: 5 % of a sending daemon's CPU). Sound because the class is confined to its loop
    // (asserted at each entry point), the core is pure (its mutations never call out), and
    // `perform` holds no access across the calls that can re-enter (it pops one action at a
    // time; re-entry is guarded); `coalescer.drain`'s body writes to the TUN and counts in
    // `core`, never reaching the coalescer. Debug builds, which the tests run, keep the
    // checks, so a change that breaks this traps there.
    #if DEBUG
    private var coalescer = TCPCoalescer()
    private var core: DatapathCore
    private var actions: [DatapathCore.Action] = []
    private var performing: [DatapathCore.Action] = []
    private var pendingTun: [[UInt8]] = []
    private var routeRequests: [IPv6Address] = []
    private var performingActions = false
    #else
    @exclusivity(unchecked) private var coalescer = TCPCoalescer()
    @exclusivity(unchecked) private var core: DatapathCore
    @exclusivity(unchecked) private var actions: [DatapathCore.Action] = []
    @exclusivity(unchecked) private var performing: [DatapathCore.Action] = []
    @exclusivity(unchecked) private var pendingTun: [[UInt8]] = []
    @exclusivity(unchecked) private var routeRequests: [IPv6Address] = []
    @exclusivity(unchecked) private var performingActions = false
    #endif

    private var ticker: RepeatedTask?
    /// The message bus (spec §7), on this loop; its packets travel through this datapath.
    public let messages: MessageService

    public init(identity: NodeIdentity, service: RouterService, tun: TunDevice?, audit: AuditLog? = nil,
                sessions: SessionOptions = .init(), topics: TopicConfig = TopicConfig(), messageLimits: MessageLimits = .standard) {
        self.service = service
        self.tun = tun
        self.audit = audit
        var options = sessions
        // Handshake timestamps are wall-clock ms: they must keep growing across restarts.
        // The wall clock from libc: this was the shipped binary's only use of Foundation, whose
        // full module (with ICU) then came along in every static build.
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        let wall = Int64(clock.tv_sec) * 1000 + Int64(clock.tv_nsec) / 1_000_000
        options.wallClockOffsetMs = wall - RouterService.now().milliseconds
        self.core = DatapathCore(identity: identity, sessions: options, now: RouterService.now())
        self.messages = MessageService(identity: identity, loop: service.loop, limits: messageLimits, topics: topics,
                                       wallOffsetMs: options.wallClockOffsetMs)
        actions.reserveCapacity(64)
        performing.reserveCapacity(64)
        messages.send = { [unowned self] packet, destination in self.sendMessage(packet, to: destination) }
        messages.flush = { [unowned self] in self.flush() }
    }

    /// The loop's packet arrays; packets written to a peer or the TUN give theirs back.
    var packetPool: PacketPool { service.packetPool }

    /// Starts the once-a-second tick (handshake retries, key expiry); call on the loop.
    public func start() {
        service.loop.preconditionInEventLoop()
        guard ticker == nil else { return }
        ticker = service.loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.tick()
        }
    }

    private func tick() {
        service.loop.preconditionInEventLoop()
        if service.tablePending { service.publishPendingTable() }
        core.tick(now: RouterService.now(), into: &actions)
        perform()
        messages.tick()
        flush()
    }

    /// Stops the tick and answers what waits for messages (the node stops).
    public func stop() {
        service.loop.preconditionInEventLoop()
        ticker?.cancel()
        ticker = nil
        messages.shutdown()
    }

    /// A message-bus packet from our address to `destination`; to an address of our own /64 it
    /// goes straight back to the message stack.
    func sendMessage(_ packet: [UInt8], to destination: IPv6Address) {
        service.loop.preconditionInEventLoop()
        if core.identity.subnet.contains(destination) {
            messages.received(packet, from: core.identity.address, key: core.identity.publicKey, to: destination)
            return
        }
        if service.tablePending { service.publishPendingTable() }
        core.sendMessage(packet, to: destination, now: RouterService.now(), into: &actions)
        perform()
    }

    /// Counters, with the session table's and the replay state's.
    public var stats: DatapathStats {
        service.loop.preconditionInEventLoop()
        var stats = core.report
        stats.bufferAllocations = service.packetPool.allocations
        stats.buffersPooled = service.packetPool.count
        return stats
    }

    /// The session state of every peer, for the API.
    public var sessionViews: [SessionTable.PeerView] {
        service.loop.preconditionInEventLoop()
        return core.sessionViews(now: RouterService.now())
    }

    public var traffic: TrafficCounters {
        service.loop.preconditionInEventLoop()
        return core.traffic
    }

    /// Packets waiting for a route or a key.
    public var queuedPackets: Int {
        service.loop.preconditionInEventLoop()
        return core.queuedPackets
    }

    // MARK: router events

    public func tableChanged(_ table: ForwardingTable) {
        service.loop.preconditionInEventLoop()
        core.tableChanged(table, now: RouterService.now(), into: &actions)
        if !actions.isEmpty {
            perform()
            flush()
        }
    }

    public func routeEvent(_ event: RouterAction) {
        service.loop.preconditionInEventLoop()
        // Packets queued for an acquired route leave now: they need the table that holds it.
        if case let .routeAcquired(subnet) = event, core.hasQueued(for: subnet) { service.publishPendingTable() }
        core.routeEvent(event, now: RouterService.now(), into: &actions)
        perform()
        flush()
    }

    // MARK: packets

    /// A TUN read that was malformed (a bad `virtio_net_hdr` or GSO layout), or a GSO
    /// super-packet that was split.
    func countTunRead(malformed: Bool = false, superPacket: Bool = false) {
        service.loop.preconditionInEventLoop()
        if malformed { core.stats.droppedMalformed += 1 }
        if superPacket { core.stats.tunSuperPacketsIn += 1 }
    }

    public func fromTun(_ packet: consuming [UInt8]) {
        service.loop.preconditionInEventLoop()
        if service.tablePending { service.publishPendingTable() }
        core.fromTun(consume packet, now: RouterService.now(), into: &actions)
        perform()
    }

    public func fromPeer(_ packet: consuming DataPacket, neighbour: NeighbourId) {
        service.loop.preconditionInEventLoop()
        if service.tablePending { service.publishPendingTable() }
        core.fromPeer(consume packet, now: RouterService.now(), into: &actions)
        perform()
    }

    /// The end of a batch: TUN writes (through `RouterService.beforeFlush`), then every
    /// connection written to.
    public func flush() {
        service.flush()
    }

    // MARK: performing actions

    private func perform() {
        // Re-entered from the router (a route request answered at once with a route event, or
        // a peer's loss): the outer call performs what the inner one queued, in order.
        guard !performingActions else { return }
        performingActions = true
        defer { performingActions = false }
        var rounds = 0
        repeat {
            rounds += 1
            performQueued()
            // Asked once the actions are done: the answer may re-enter (see above).
            while let address = routeRequests.popLast() { service.routeNeeded(address) }
        } while !actions.isEmpty && rounds < Self.performRounds
        // A batch never holds more than a reader batch's or a socket read's packets; flush early
        // anyway if a caller forgets, so this can never grow.
        if pendingTun.count >= DatapathLimits.tunWriteBatch { flushTun() }
    }

    /// Rounds of route answers performed in one go (each round's work is bounded; what is left
    /// waits for the next packet, route event or the once-a-second tick).
    static let performRounds = 64

    private func performQueued() {
        // Taken off the end of a reversed copy: each action is owned here, so a packet written
        // to a peer gives its array back to the pool unshared.
        swap(&performing, &actions)
        performing.reverse()
        while let action = performing.popLast() {
            if case .toPeer = action {
                guard case let .toPeer(packet, next) = consume action else { continue }
                var sent = consume packet
                switch service.send(.data(sent), to: next) {
                case .queued: core.stats.peerPacketsOut += 1
                case .gone:
                    // Its neighbour just went: the packet waits (copied) for the router's next table.
                    core.nextHopGone(copy sent, into: &actions)
                case .busy: core.stats.droppedPeerBusy += 1
                }
                var payload: [UInt8] = []
                swap(&payload, &sent.payload)
                service.packetPool.recycle(consume payload)
                continue
            }
            switch action {
            case .toPeer:
                break  // above
            case let .toTun(packet):
                guard tun != nil else { core.stats.droppedNoTun += 1; continue }
                pendingTun.append(packet)
            case let .routeNeeded(address):
                if routeRequests.last != address { routeRequests.append(address) }
            case let .message(packet, source, key, destination):
                messages.received(packet, from: source, key: key, to: destination)
            case let .audit(lie):
                var meta: Logger.Metadata = ["outerSource": "\(lie.outerSource)", "outerDestination": "\(lie.outerDestination)"]
                if let s = lie.innerSource { meta["innerSource"] = "\(s)" }
                if let d = lie.innerDestination { meta["innerDestination"] = "\(d)" }
                audit?.record("spoofed-packet", "dropped a data packet: \(lie.message)", metadata: meta)
            }
        }
    }

    /// Writes what waits for the TUN; the node hooks it to `RouterService.beforeFlush`.
    public func flushTun() {
        service.loop.preconditionInEventLoop()
        guard let tun, !pendingTun.isEmpty else { return }
        let pool = service.packetPool
        // Each packet is moved out of the list, so its array goes back to the pool unshared.
        if tun.vnetHeader {
            for i in pendingTun.indices {
                var packet: [UInt8] = []
                swap(&packet, &pendingTun[i])
                if let merged = coalescer.add(consume packet) { pool.recycle(merged) }
            }
            coalescer.drain { header, packet in
                let ok = header.withUnsafeBytes { h in
                    (try? packet.withUnsafeBytes { try tun.write(header: h, packet: $0) }) ?? false
                }
                account(written: ok, packet: packet, segments: header.segmentCount(packetLength: packet.count))
            }
            // Super-packet buffers stay in the coalescer; every other array goes back to the pool.
            while let array = coalescer.popFreed() { pool.recycle(array) }
        } else {
            for i in pendingTun.indices {
                var packet: [UInt8] = []
                swap(&packet, &pendingTun[i])
                let ok = (try? packet.withUnsafeBytes { try tun.write($0) }) ?? false
                account(written: ok, packet: packet, segments: 1)
                pool.recycle(consume packet)
            }
        }
        pendingTun.removeAll(keepingCapacity: true)
    }

    private func account(written: Bool, packet: [UInt8], segments: Int) {
        if written {
            core.stats.tunPacketsOut += UInt64(segments)
            core.stats.tunBytesOut += UInt64(packet.count)
            if segments > 1 { core.stats.tunSegmentsCoalesced += UInt64(segments) }
        } else {
            core.stats.droppedTunFull += UInt64(segments)
        }
    }
}

public import MyceliumCore
public import MyceliumCrypto
public import MyceliumDatapath
public import MyceliumRouting

/// Datapath cores joined by in-memory links on a virtual clock: the spec's §4 rules run end to
/// end in-process, with no namespace, socket or thread.
///
/// Each node has a `TUN` double (what the core wrote, and what the test injects) and loopback
/// links to its neighbours; `run()` carries packets across links until none is in flight.
/// Forwarding tables are installed by hand (`installShortestPaths`, `setTable`) so a test decides
/// exactly when a route exists, and answers `.routeNeeded` itself (`routeRequests`).
public final class DatapathLab {
    /// A node's TUN as the test sees it: what the core wrote to it.
    public struct TUN {
        public var written: [[UInt8]] = []
    }

    public struct LabNode {
        public let identity: NodeIdentity
        public var core: DatapathCore
        public var tun = TUN()
        /// Neighbour handle → index of the node at the other end.
        public var links: [NeighbourId: Int] = [:]
        /// Addresses the core asked the router about, in order.
        public var routeRequests: [IPv6Address] = []
        public var audits: [DatapathAudit] = []
        /// Packets handed to each neighbour (whatever happened to them next).
        public var sentToPeers = 0
        /// The node's message bus (spec §7), fed by its core.
        public var messages: MessageStack
        /// Replies handed to a push that waited for them, and messages for a forward socket.
        public var replies: [ReceivedMessage] = []
        public var forwarded: [(message: ReceivedMessage, socket: String)] = []
    }

    public var now: Instant
    public private(set) var nodes: [LabNode] = []
    /// Packets on a link: (to node, over its neighbour handle, packet).
    private var inFlight: [(to: Int, from: NeighbourId, packet: DataPacket)] = []
    /// Links whose packets vanish (a test's cut cable).
    public var cut: Set<Int> = []
    private var actions: [DatapathCore.Action] = []
    private var messageActions: [MessageStack.Action] = []

    /// Every packet that crossed a link, in order (a test replays them with `inject`).
    public private(set) var carried: [(to: Int, packet: DataPacket)] = []
    /// Packets for which this returns true vanish on their link (lost handshakes, say).
    public var drop: ((_ to: Int, _ packet: DataPacket) -> Bool)?
    private let cipherCache: Int
    private var sessionOptions: [SessionOptions]

    /// `count` nodes with keys drawn from `seed`; no links yet. Sessions are off unless given
    /// (the §4 tests check the static scheme, which is what Rust speaks); `sessions` holds one
    /// option set for all nodes or one per node.
    public init(count: Int, seed: UInt64 = 1, cipherCache: Int = DatapathLimits.cipherCache,
                sessions: [SessionOptions] = [SessionOptions(enabled: false)], now: Instant = Instant(milliseconds: 1_000)) {
        self.now = now
        self.cipherCache = cipherCache
        sessionOptions = sessions.count == count ? sessions : Array(repeating: sessions[0], count: count)
        var random = SeededRandom(seed: seed)
        for i in 0..<count {
            let identity = NodeIdentity(secretKey: SecretKey(bytes: random.bytes(32))!)
            var ids = SeededRandom(seed: seed &+ UInt64(i) &* 7919)
            nodes.append(LabNode(identity: identity, core: DatapathCore(identity: identity, cipherCache: cipherCache,
                                                                        sessions: sessionOptions[i], now: now),
                                 messages: MessageStack(address: identity.address, publicKey: identity.publicKey,
                                                        newId: { ids.next() })))
        }
    }

    /// `node` restarts: a fresh core with the same key and table (its sessions are gone). The
    /// wall clock moves on with the virtual one, as across a real restart.
    public func restart(_ node: Int, sessions: SessionOptions? = nil) {
        if let sessions { sessionOptions[node] = sessions }
        let table = nodes[node].core.table
        nodes[node].core = DatapathCore(identity: nodes[node].identity, cipherCache: cipherCache,
                                        sessions: sessionOptions[node], now: now)
        nodes[node].core.tableChanged(table)
    }

    /// Moves the clock on by `ms`, ticking every core once a second on the way.
    public func advance(_ ms: Int64) {
        var left = ms
        while left > 0 {
            let step = min(left, 1_000)
            now = now + step
            left -= step
            for i in nodes.indices {
                nodes[i].core.tick(now: now, into: &actions)
                perform(at: i)
            }
        }
    }

    /// Moves the clock on by `ms` in steps of the message stack's retransmission interval,
    /// ticking every message stack each step and every core each second, carrying packets
    /// after every step.
    public func advanceMessages(_ ms: Int64) {
        var left = ms
        while left > 0 {
            let step = min(left, MessageProtocol.retransmitMs)
            let before = now.milliseconds / 1_000
            now = now + step
            left -= step
            for i in nodes.indices {
                if now.milliseconds / 1_000 != before {
                    nodes[i].core.tick(now: now, into: &actions)
                    perform(at: i)
                }
                nodes[i].messages.tick(now: now, into: &messageActions)
                performMessages(at: i)
            }
            run()
        }
    }

    /// `node` pushes a message; its packets are in flight (call `run` or `advanceMessages`).
    public func pushMessage(_ node: Int, _ data: [UInt8], topic: [UInt8] = [], to destination: IPv6Address,
                            replyTo: UInt64? = nil, expectReply: Bool = false) throws(MessageStack.PushError) -> UInt64 {
        let id = try nodes[node].messages.push(data, topic: topic, to: destination, replyTo: replyTo, expectReply: expectReply,
                                               now: now, into: &messageActions)
        performMessages(at: node)
        return id
    }

    /// Pops `node`'s oldest message (telling its sender it was read).
    public func popMessage(_ node: Int, topic: [UInt8]? = nil, peek: Bool = false) -> ReceivedMessage? {
        let message = nodes[node].messages.pop(topic: topic, peek: peek, into: &messageActions)
        performMessages(at: node)
        return message
    }

    /// Changes `node`'s message stack (its topics, say).
    public func withMessages<T>(_ node: Int, _ body: (inout MessageStack) -> T) -> T {
        body(&nodes[node].messages)
    }

    private func performMessages(at node: Int) {
        while !messageActions.isEmpty {
            let batch = messageActions
            messageActions.removeAll()
            for action in batch {
                switch action {
                case let .send(packet, to):
                    if to == nodes[node].identity.address {
                        nodes[node].messages.received(packet, from: to, sourceKey: nodes[node].identity.publicKey, to: to,
                                                      now: now, into: &messageActions)
                    } else {
                        nodes[node].core.sendMessage(packet, to: to, now: now, into: &actions)
                        perform(at: node)
                    }
                case let .reply(message):
                    nodes[node].replies.append(message)
                case let .forward(message, socket):
                    nodes[node].forwarded.append((message, socket))
                case .inboxChanged:
                    break
                }
            }
        }
    }

    /// Forgets what `node`'s TUN was given (long runs).
    public func clearTun(_ node: Int) {
        nodes[node].tun.written.removeAll(keepingCapacity: true)
    }

    /// Puts a packet on the link into `node` (a replay, a duplicate).
    public func inject(_ node: Int, _ packet: DataPacket) {
        inFlight.append((to: node, from: NeighbourId(0), packet: packet))
    }

    /// The user-data type of a static-sealed packet from `a` to `b` (nil when it is not one,
    /// e.g. session-sealed): lets a test see handshake messages on the wire.
    public func staticType(_ packet: DataPacket, between a: Int, and b: Int) -> UserHeader.PayloadType? {
        guard let secret = nodes[a].identity.secretKey.sharedSecret(with: nodes[b].identity.publicKey) else { return nil }
        return (try? PacketCipher(key: secret).openSplit(packet.payload))?.header?.type
    }

    /// A bare identity (a node that is not in the lab, e.g. a key for the cache tests).
    public static func identity(seed: UInt64) -> NodeIdentity {
        var random = SeededRandom(seed: seed)
        return NodeIdentity(secretKey: SecretKey(bytes: random.bytes(32))!)
    }

    /// Joins `a` and `b`; each sees the other behind a new neighbour handle.
    public func link(_ a: Int, _ b: Int) {
        nodes[a].links[NeighbourId(UInt64(nodes[a].links.count + 1))] = b
        nodes[b].links[NeighbourId(UInt64(nodes[b].links.count + 1))] = a
    }

    /// Joins the nodes in a line: 0 — 1 — 2 …
    public func line() {
        for i in 0..<(nodes.count - 1) { link(i, i + 1) }
    }

    public func neighbour(of node: Int, towards other: Int) -> NeighbourId? {
        nodes[node].links.first { $0.value == other }?.key
    }

    /// Every node gets a route to every other node it can reach, along a shortest path.
    public func installShortestPaths(expiresIn: Int64 = 60_000) {
        for i in nodes.indices { setTable(i, entries: shortestPathEntries(from: i, expiresIn: expiresIn)) }
    }

    /// The entries `installShortestPaths` would give `node`.
    public func shortestPathEntries(from node: Int, expiresIn: Int64 = 60_000) -> [ForwardingTable.Entry] {
        var firstHop: [Int: (NeighbourId, Int)] = [:]
        var frontier = [node]
        var seen: Set<Int> = [node]
        var distance = 0
        while !frontier.isEmpty {
            distance += 1
            var next: [Int] = []
            for n in frontier {
                for (id, other) in nodes[n].links.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where !seen.contains(other) {
                    seen.insert(other)
                    firstHop[other] = (n == node ? id : firstHop[n]!.0, distance)
                    next.append(other)
                }
            }
            frontier = next
        }
        return firstHop.map { other, hop in
            ForwardingTable.Entry(subnet: nodes[other].identity.subnet, nextHop: hop.0, metric: Metric(UInt16(hop.1 * 10)),
                                  owner: nodes[other].identity.publicKey, expires: now + expiresIn)
        }
    }

    /// A new table for `node`, as the router hands it over: packets waiting for a route it has go.
    public func setTable(_ node: Int, entries: [ForwardingTable.Entry]) {
        nodes[node].core.tableChanged(ForwardingTable(localSubnet: nodes[node].identity.subnet, entries: entries),
                                      now: now, into: &actions)
        perform(at: node)
    }

    /// What `node`'s core does with a TUN packet, returned instead of performed (what a shell
    /// holds before it writes to a connection).
    public func actionsFromTun(_ node: Int, _ packet: [UInt8]) -> [DatapathCore.Action] {
        var out: [DatapathCore.Action] = []
        nodes[node].core.fromTun(packet, now: now, into: &out)
        return out
    }

    /// `node`'s shell found the connection to `packet`'s next hop gone.
    public func nextHopGone(_ node: Int, _ packet: DataPacket) {
        nodes[node].core.nextHopGone(packet, into: &actions)
        perform(at: node)
    }

    // MARK: driving

    /// The TUN of `node` hands its core one IPv6 packet.
    public func fromTun(_ node: Int, _ packet: [UInt8]) {
        nodes[node].core.fromTun(packet, now: now, into: &actions)
        perform(at: node)
    }

    /// A packet arrives at `node` from its neighbour `from` (a peer the lab does not model).
    public func fromPeer(_ node: Int, _ packet: DataPacket, from: NeighbourId = NeighbourId(999)) {
        nodes[node].core.fromPeer(packet, now: now, into: &actions)
        perform(at: node)
    }

    /// The router of `node` reports a route event (acquired, lost, query failed).
    public func routeEvent(_ node: Int, _ event: RouterAction) {
        nodes[node].core.routeEvent(event, now: now, into: &actions)
        perform(at: node)
    }

    /// Carries packets over the links until none is in flight; returns how many crossed.
    @discardableResult
    public func run(maxSteps: Int = 10_000) -> Int {
        var steps = 0
        while !inFlight.isEmpty, steps < maxSteps {
            let (to, from, packet) = inFlight.removeFirst()
            steps += 1
            if let drop, drop(to, packet) { continue }
            carried.append((to, packet))
            nodes[to].core.fromPeer(packet, now: now, into: &actions)
            _ = from
            perform(at: to)
        }
        return steps
    }

    /// Packets in flight right now (a test may tamper with them before `run`).
    public var pending: [DataPacket] {
        get { inFlight.map(\.packet) }
        set {
            precondition(newValue.count == inFlight.count, "replace packets one for one")
            for i in inFlight.indices { inFlight[i].packet = newValue[i] }
        }
    }

    private func perform(at node: Int) {
        let batch = actions
        actions.removeAll(keepingCapacity: true)
        for action in batch {
            switch action {
            case let .toPeer(packet, next):
                nodes[node].sentToPeers += 1
                guard let other = nodes[node].links[next], !cut.contains(node), !cut.contains(other) else { continue }
                let back = neighbour(of: other, towards: node) ?? NeighbourId(0)
                inFlight.append((to: other, from: back, packet: packet))
            case let .toTun(packet):
                nodes[node].tun.written.append(packet)
            case let .routeNeeded(address):
                nodes[node].routeRequests.append(address)
            case let .audit(lie):
                nodes[node].audits.append(lie)
            case let .message(packet, source, key, destination):
                nodes[node].messages.received(packet, from: source, sourceKey: key, to: destination, now: now, into: &messageActions)
                performMessages(at: node)
            }
        }
    }
}

/// IPv6 packets for datapath tests.
public enum TestPackets {
    /// An ICMPv6 echo request (valid checksum) from `source` to `destination`.
    public static func echoRequest(from source: IPv6Address, to destination: IPv6Address, hopLimit: UInt8 = 64,
                                   payload: Int = 56, identifier: UInt16 = 0x4242, sequence: UInt16 = 1) -> [UInt8] {
        var message: [UInt8] = [128, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF), UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
        message += (0..<payload).map { UInt8(truncatingIfNeeded: $0) }
        let sum = ICMPv6.checksum(source: source, destination: destination, message: message[...])
        message[2] = UInt8(sum >> 8)
        message[3] = UInt8(sum & 0xFF)
        return ipv6(from: source, to: destination, nextHeader: ICMPv6.nextHeader, hopLimit: hopLimit, payload: message)
    }

    /// A bare IPv6 packet around `payload` (no checksum work: for UDP/TCP tests build the L4 yourself).
    public static func ipv6(from source: IPv6Address, to destination: IPv6Address, nextHeader: UInt8, hopLimit: UInt8 = 64,
                            payload: [UInt8]) -> [UInt8] {
        var packet: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), nextHeader, hopLimit]
        packet += source.bytes
        packet += destination.bytes
        return packet + payload
    }
}

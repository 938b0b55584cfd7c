public import MyceliumCore
public import MyceliumRouting

/// A message received completely (spec §9 `MessageReceiveInfo`).
public struct ReceivedMessage: Hashable, Sendable {
    public let id: UInt64
    public let isReply: Bool
    public let source: IPv6Address
    public let sourceKey: PublicKey
    public let destination: IPv6Address
    public let destinationKey: PublicKey
    public let topic: [UInt8]
    public let data: [UInt8]

    public init(id: UInt64, isReply: Bool, source: IPv6Address, sourceKey: PublicKey, destination: IPv6Address,
                destinationKey: PublicKey, topic: [UInt8], data: [UInt8]) {
        self.id = id
        self.isReply = isReply
        self.source = source
        self.sourceKey = sourceKey
        self.destination = destination
        self.destinationKey = destinationKey
        self.topic = topic
        self.data = data
    }
}

/// What the API shows of a message we sent (spec §9 `MessageInfo`).
public struct MessageStatus: Hashable, Sendable {
    public enum State: Hashable, Sendable {
        case pending
        case sending(pending: Int, sent: Int, acked: Int)
        case received
        case read
        case aborted
    }

    public let destination: IPv6Address
    public let state: State
    public let created: Instant
    public let deadline: Instant
    public let length: Int
}

/// The reliable message bus (spec §7) with no I/O: packets and `now` in, actions out.
///
/// Sending (`push`): INIT every 100 ms until INIT|ACK; then the data in ceil(len/1300) chunks
/// split evenly (so no chunk is short enough to trip Rust's receiver, spec §7.3), at most
/// `chunksInFlight` unacknowledged, each resent after 100 ms; when all are acknowledged, DONE
/// every 100 ms until DONE|ACK; READ when the receiver's application read it. At the deadline
/// (300 s) an unfinished message is aborted (ABORTED sent); its status is kept as long again.
/// Receiving (`received`): INIT checked against the topic's allow list and our limits; chunks
/// stored by index; DONE checked (count, size, BLAKE3) and the message delivered: to the push
/// waiting for this reply, else the topic's forward socket, else the inbox.
/// Acknowledgements are accepted only from the node the message was sent to (its /64, which only
/// its key can seal for); inbound state is keyed by sender and id, so nobody else can reset or
/// complete it.
///
/// A value type with one owner (the datapath's loop); every table is bounded (`MessageLimits`).
public struct MessageStack {
    public enum Action: Sendable {
        /// Seal this message packet for `to` and send it from our address.
        case send([UInt8], to: IPv6Address)
        /// A reply to a push that waits for it (`expectReply`).
        case reply(ReceivedMessage)
        /// Hand the message to the topic's Unix socket; its answer goes back as a reply.
        case forward(ReceivedMessage, socket: String)
        /// A message entered the inbox (wake who waits to pop).
        case inboxChanged
    }

    public enum PushError: Error, Equatable, CustomStringConvertible {
        case topicTooLong(Int)
        case tooLarge(Int, limit: Int)
        case busy
        case duplicateId

        public var description: String {
            switch self {
            case let .topicTooLong(n): "topic is \(n) bytes; at most \(MessageProtocol.maxTopicLength)"
            case let .tooLarge(n, limit): "message is \(n) bytes; at most \(limit)"
            case .busy: "too many messages are being sent; try again later"
            case .duplicateId: "a message with this id is being sent"
            }
        }
    }

    public let address: IPv6Address
    public let publicKey: PublicKey
    public let limits: MessageLimits
    public var topics: TopicConfig
    public private(set) var stats = MessageStats()
    private let newId: () -> UInt64

    private var sending: [UInt64: Outbound] = [:]
    private var sendingBytes = 0
    /// Finished outbound messages, oldest first, and their status by id.
    private var finishedOrder = Ring<(id: UInt64, forget: Instant)>()
    private var finished: [UInt64: Finished] = [:]
    private var pending: [InboundKey: Inbound] = [:]
    private var pendingBytes = 0
    private var completed = Ring<InboundKey>()
    private var completedSet: Set<InboundKey> = []
    private var inbox = Ring<ReceivedMessage>()
    private var inboxBytes = 0
    private var replyWaiters: Set<UInt64> = []

    public init(address: IPv6Address, publicKey: PublicKey, limits: MessageLimits = .standard,
                topics: TopicConfig = TopicConfig(), newId: @escaping () -> UInt64 = { UInt64.random(in: .min ... .max) }) {
        self.address = address
        self.publicKey = publicKey
        self.limits = limits
        self.topics = topics
        self.newId = newId
    }

    // MARK: sending

    /// Starts sending `data` to `destination`; a reply when `replyTo` is set (same id, REPLY flag).
    /// With `expectReply`, a reply to it is handed out as `.reply` instead of entering the inbox.
    public mutating func push(_ data: [UInt8], topic: [UInt8] = [], to destination: IPv6Address, replyTo: UInt64? = nil,
                              expectReply: Bool = false, now: Instant, into actions: inout [Action]) throws(PushError) -> UInt64 {
        var refusal: PushError?
        if topic.count > MessageProtocol.maxTopicLength {
            refusal = .topicTooLong(topic.count)
        } else if data.count > limits.maxMessageSize {
            refusal = .tooLarge(data.count, limit: limits.maxMessageSize)
        } else if sending.count >= limits.maxSending || sendingBytes + data.count > limits.maxSendingBytes {
            refusal = .busy
        }
        if let refusal {
            stats.refusedPush += 1
            throw refusal
        }
        var id = replyTo ?? newId()
        if replyTo == nil {
            var tries = 0
            while sending[id] != nil || finished[id] != nil, tries < 8 { id = newId(); tries += 1 }
        }
        guard sending[id] == nil else { stats.refusedPush += 1; throw .duplicateId }
        if finished[id] != nil { finished[id] = nil }  // a new message under an id whose status we kept
        var message = Outbound(id: id, destination: destination, isReply: replyTo != nil, topic: topic, data: data,
                               created: now, deadline: now + MessageProtocol.sendWindowMs)
        message.lastSent = now
        actions.append(.send(MessagePacket(id: id, isReply: message.isReply, body: .initial(length: UInt64(data.count), topic: topic)).encode(),
                             to: destination))
        sending[id] = message
        sendingBytes += data.count
        if expectReply { replyWaiters.insert(id) }
        stats.sent += 1
        return id
    }

    /// Stops routing replies to `id` to `.reply` (the push stopped waiting): they go to the inbox.
    public mutating func stopExpectingReply(_ id: UInt64) { replyWaiters.remove(id) }

    public func status(of id: UInt64) -> MessageStatus? {
        if let m = sending[id] { return m.status }
        return finished[id]?.status
    }

    /// Whether `tick` has retransmissions to do soon (the shell ticks every 100 ms then, else
    /// once a second).
    public var isSending: Bool { !sending.isEmpty }

    // MARK: the inbox

    public var inboxCount: Int { inbox.count }
    public var inboxByteCount: Int { inboxBytes }
    public var pendingCount: Int { pending.count }
    public var sendingCount: Int { sending.count }

    /// The oldest message (on `topic`, if given); removed unless `peek`. Tells its sender it was
    /// read, as Rust does for pops and peeks alike.
    public mutating func pop(topic: [UInt8]?, peek: Bool, into actions: inout [Action]) -> ReceivedMessage? {
        guard let index = inbox.firstIndex(where: { topic == nil || $0.topic == topic! }) else { return nil }
        let message = peek ? inbox[index] : inbox.remove(at: index)
        if !peek { inboxBytes -= message.data.count }
        actions.append(.send(MessagePacket(id: message.id, body: .read).encode(), to: message.source))
        return message
    }

    /// Puts a message in the inbox (a forward socket failed, or its waiter left); false and
    /// counted when the inbox is full.
    @discardableResult
    public mutating func enqueue(_ message: ReceivedMessage, into actions: inout [Action]) -> Bool {
        guard inbox.count < limits.maxInbox, inboxBytes + message.data.count <= limits.maxInboxBytes else {
            stats.refusedFull += 1
            return false
        }
        inbox.append(message)
        inboxBytes += message.data.count
        actions.append(.inboxChanged)
        return true
    }

    // MARK: receiving

    /// A message packet (the plaintext after the user header) from `source`, opened with
    /// `sourceKey`, for `destination` (one of our addresses).
    public mutating func received(_ bytes: [UInt8], from source: IPv6Address, sourceKey: PublicKey, to destination: IPv6Address,
                                  now: Instant, into actions: inout [Action]) {
        guard let packet = try? MessagePacket(decoding: bytes) else {
            stats.malformed += 1
            return
        }
        switch packet.body {
        case let .initialAck(length, _):
            initAcked(packet.id, length: length, from: source, now: now, into: &actions)
        case let .chunkAck(index, _, _):
            chunkAcked(packet.id, index: index, from: source, now: now, into: &actions)
        case .doneAck:
            guard var m = sending[packet.id], Self.sameNode(m.destination, source), m.state == .inProgress, m.ackedCount == m.chunks.count else { return }
            m.state = .received
            stats.delivered += 1
            finish(m, now: now)
        case let .initial(length, topic):
            receivedInit(InboundKey(source: source, id: packet.id), isReply: packet.isReply, length: length, topic: topic,
                         destination: destination, now: now, into: &actions)
        case let .chunk(index, offset, data):
            receivedChunk(InboundKey(source: source, id: packet.id), index: index, offset: offset, data: data, now: now, into: &actions)
        case let .done(count, checksum):
            receivedDone(InboundKey(source: source, id: packet.id), count: count, checksum: checksum, sourceKey: sourceKey,
                         now: now, into: &actions)
        case .read:
            if let m = sending[packet.id], Self.sameNode(m.destination, source), m.state == .inProgress,
               m.ackedCount == m.chunks.count {
                // Read there, so received there: our DONE|ACK was lost, and a Rust receiver never
                // repeats it.
                var done = m
                done.state = .read
                stats.delivered += 1
                finish(done, now: now)
            } else if var f = finished[packet.id], Self.sameNode(f.destination, source), f.state == .received {
                f.state = .read
                finished[packet.id] = f
            }
        case .aborted:
            let key = InboundKey(source: source, id: packet.id)
            if let m = pending.removeValue(forKey: key) {
                pendingBytes -= m.length
                stats.expired += 1
            }
        }
    }

    // Outbound and inbound entries are changed in place (`table[key]!.change()`): a copy taken
    // out and written back would copy its whole chunk list on every acknowledgement.

    private mutating func initAcked(_ id: UInt64, length: UInt64, from source: IPv6Address, now: Instant, into actions: inout [Action]) {
        guard let to = sending[id]?.destination, Self.sameNode(to, source), sending[id]?.state == .initial else { return }
        guard length == UInt64(sending[id]!.data.count) else { stats.malformed += 1; return }
        sending[id]!.start(now: now, window: limits.chunksInFlight, into: &actions)
    }

    private mutating func chunkAcked(_ id: UInt64, index: UInt64, from source: IPv6Address, now: Instant, into actions: inout [Action]) {
        guard let to = sending[id]?.destination, Self.sameNode(to, source), sending[id]?.state == .inProgress, let count = sending[id]?.chunks.count else { return }
        guard index < UInt64(count) else { stats.malformed += 1; return }
        sending[id]!.acknowledge(Int(index), now: now, window: limits.chunksInFlight, into: &actions)
    }

    private mutating func receivedInit(_ key: InboundKey, isReply: Bool, length: UInt64, topic: [UInt8], destination: IPv6Address,
                                       now: Instant, into actions: inout [Action]) {
        // A reply skips the allow list only if it answers a message we sent to that node.
        let answersUs = isReply && sentMessage(key.id, to: key.source)
        guard answersUs || topics.allows(topic, from: key.source) else {
            stats.refusedTopic += 1
            return
        }
        if completedSet.contains(key) {
            // A late copy of a message we have; but a reply to ours under the same id is new.
            guard answersUs else { return }
            completedSet.remove(key)
        }
        if let old = pending[key] {
            if UInt64(old.length) == length, old.topic == topic, old.isReply == isReply {
                // A repeated INIT (our INIT|ACK was lost or overtaken): keep the chunks we have.
                pending[key]!.lastHeard = now
                actions.append(.send(MessagePacket(id: key.id, body: .initialAck(length: length, topicLength: UInt8(topic.count))).encode(),
                                     to: key.source))
                return
            }
            pending[key] = nil  // restarted with other content, as Rust
            pendingBytes -= old.length
        }
        // Room is checked now, before anything is acknowledged: the whole message must fit the
        // inbox once complete, so an acknowledged message is never dropped for lack of room.
        guard length <= UInt64(limits.maxMessageSize), pending.count < limits.maxPending,
              pendingBytes + Int(length) <= limits.maxPendingBytes, inbox.count + pending.count < limits.maxInbox,
              inboxBytes + pendingBytes + Int(length) <= limits.maxInboxBytes else {
            // No acknowledgement: the sender retries, and gets through once there is room.
            stats.refusedFull += 1
            return
        }
        let n = Int(length)
        pending[key] = Inbound(isReply: isReply, destination: destination, length: n, topic: topic,
                               chunks: Array(repeating: nil, count: MessageProtocol.chunkCount(length: n)), lastHeard: now)
        pendingBytes += n
        actions.append(.send(MessagePacket(id: key.id, body: .initialAck(length: length, topicLength: UInt8(topic.count))).encode(),
                             to: key.source))
    }

    private mutating func receivedChunk(_ key: InboundKey, index: UInt64, offset: UInt64, data: [UInt8], now: Instant,
                                        into actions: inout [Action]) {
        guard let fits = pending[key]?.fits(index: index, offset: offset, size: data.count) else { return }
        // Any split is accepted (Rust's is 1300 bytes, ours even): bounds and the slot count only.
        guard fits else {
            stats.malformed += 1
            return
        }
        let size = UInt64(data.count)
        pending[key]!.store(Int(index), data, now: now)
        actions.append(.send(MessagePacket(id: key.id, body: .chunkAck(index: index, offset: offset, size: size)).encode(), to: key.source))
    }

    private mutating func receivedDone(_ key: InboundKey, count: UInt64, checksum: [UInt8], sourceKey: PublicKey, now: Instant,
                                       into actions: inout [Action]) {
        let ack = MessagePacket(id: key.id, body: .doneAck(chunkCount: count, checksum: checksum)).encode()
        if completedSet.contains(key) {
            // Our DONE|ACK was lost: say it again (Rust stays silent and the sender retries to its deadline).
            actions.append(.send(ack, to: key.source))
            return
        }
        guard let m = pending[key] else { return }
        guard count == UInt64(m.chunks.count), m.stored == m.length, m.chunks.allSatisfy({ $0 != nil }) else {
            pending[key]?.lastHeard = now
            return  // not all chunks yet: the sender resends what we did not acknowledge
        }
        var data: [UInt8] = []
        data.reserveCapacity(m.length)
        for chunk in m.chunks { data += chunk! }
        pending[key] = nil
        pendingBytes -= m.length
        guard BLAKE3.hash(data) == checksum else {
            stats.corrupt += 1
            return
        }
        remember(key)
        stats.received += 1
        actions.append(.send(ack, to: key.source))
        let message = ReceivedMessage(id: key.id, isReply: m.isReply, source: key.source, sourceKey: sourceKey,
                                      destination: m.destination, destinationKey: publicKey, topic: m.topic, data: data)
        if m.isReply, sentMessage(key.id, to: key.source), replyWaiters.remove(key.id) != nil {
            actions.append(.reply(message))
        } else if !m.isReply, let socket = topics.forwardSocket(of: m.topic) {
            stats.forwarded += 1
            actions.append(.forward(message, socket: socket))
        } else {
            enqueue(message, into: &actions)
        }
    }

    /// Whether we sent message `id` to `source`'s node (being sent, or its status still kept).
    private func sentMessage(_ id: UInt64, to source: IPv6Address) -> Bool {
        guard let to = sending[id]?.destination ?? finished[id]?.destination else { return false }
        return Self.sameNode(to, source)
    }

    /// Two addresses of one node: the same /64, whose owner's key sealed the packet (a node
    /// answers from the address a message was sent to, which may be any address of its /64).
    static func sameNode(_ a: IPv6Address, _ b: IPv6Address) -> Bool { Subnet.slash64(of: a) == Subnet.slash64(of: b) }

    private mutating func remember(_ key: InboundKey) {
        if completed.count >= limits.completedMemory, let old = completed.popFirst() { completedSet.remove(old) }
        completed.append(key)
        completedSet.insert(key)
    }

    // MARK: time

    /// Retransmissions, deadlines and expiry; call every `MessageProtocol.retransmitMs` while
    /// `isSending`, else about once a second.
    public mutating func tick(now: Instant, into actions: inout [Action]) {
        for id in Array(sending.keys) {
            // Taken out while it changes (unshared, so nothing is copied), then put back.
            var m = sending.removeValue(forKey: id)!
            if now >= m.deadline {
                actions.append(.send(MessagePacket(id: id, body: .aborted).encode(), to: m.destination))
                m.state = .aborted
                replyWaiters.remove(id)
                stats.expired += 1
                sending[id] = m
                finish(m, now: now)
                continue
            }
            switch m.state {
            case .initial:
                if now - m.lastSent >= MessageProtocol.retransmitMs {
                    m.lastSent = now
                    stats.retransmitted += 1
                    actions.append(.send(MessagePacket(id: id, isReply: m.isReply,
                                                       body: .initial(length: UInt64(m.data.count), topic: m.topic)).encode(),
                                         to: m.destination))
                }
            case .inProgress:
                stats.retransmitted += UInt64(m.resendStale(now: now, into: &actions))
                m.sendChunks(now: now, window: limits.chunksInFlight, into: &actions)
                if m.ackedCount == m.chunks.count, now - m.lastSent >= MessageProtocol.retransmitMs {
                    stats.retransmitted += 1
                    m.sendDone(now: now, into: &actions)
                }
            case .received, .read, .aborted:
                break
            }
            sending[id] = m
        }
        while let first = finishedOrder.first, first.forget <= now {
            _ = finishedOrder.popFirst()
            if finished[first.id]?.forget == first.forget { finished[first.id] = nil }
        }
        if !pending.isEmpty {
            for (key, m) in pending where now - m.lastHeard >= limits.pendingIdleMs {
                pending[key] = nil
                pendingBytes -= m.length
                stats.expired += 1
            }
        }
    }

    /// Moves a message out of `sending`, keeping its status (not its data) until the end of its
    /// second window.
    private mutating func finish(_ m: Outbound, now: Instant) {
        sending[m.id] = nil
        sendingBytes -= m.data.count
        if finishedOrder.count >= limits.maxStatus, let old = finishedOrder.popFirst(), finished[old.id]?.forget == old.forget {
            finished[old.id] = nil
        }
        let forget = m.deadline + MessageProtocol.sendWindowMs
        finished[m.id] = Finished(destination: m.destination, state: m.state, created: m.created, deadline: m.deadline,
                                  length: m.data.count, forget: forget)
        finishedOrder.append((m.id, forget))
    }
}

// MARK: state

struct InboundKey: Hashable {
    let source: IPv6Address
    let id: UInt64
}

struct Inbound {
    let isReply: Bool
    let destination: IPv6Address
    let length: Int
    let topic: [UInt8]
    var chunks: [[UInt8]?]
    var stored = 0
    var lastHeard: Instant

    init(isReply: Bool, destination: IPv6Address, length: Int, topic: [UInt8], chunks: [[UInt8]?], lastHeard: Instant) {
        self.isReply = isReply
        self.destination = destination
        self.length = length
        self.topic = topic
        self.chunks = chunks
        self.lastHeard = lastHeard
    }

    /// Whether a chunk lies inside the message and keeps the stored total within its length.
    func fits(index: UInt64, offset: UInt64, size: Int) -> Bool {
        index < UInt64(chunks.count) && offset <= UInt64(length) && UInt64(size) <= UInt64(length) - offset
            && stored - (chunks[Int(index)]?.count ?? 0) + size <= length
    }

    mutating func store(_ index: Int, _ data: [UInt8], now: Instant) {
        stored += data.count - (chunks[index]?.count ?? 0)
        chunks[index] = data
        lastHeard = now
    }
}

struct Finished {
    let destination: IPv6Address
    var state: Outbound.State
    let created: Instant
    let deadline: Instant
    let length: Int
    let forget: Instant

    var status: MessageStatus {
        MessageStatus(destination: destination, state: state.status(chunks: []), created: created, deadline: deadline, length: length)
    }
}

struct Outbound {
    enum State: Equatable {
        case initial, inProgress, received, read, aborted

        func status(chunks: [Chunk]) -> MessageStatus.State {
            switch self {
            case .initial: return .pending
            case .inProgress:
                var pending = 0, sent = 0, acked = 0
                for c in chunks {
                    if c.acked { acked += 1 } else if c.sentAt != nil { sent += 1 } else { pending += 1 }
                }
                return .sending(pending: pending, sent: sent, acked: acked)
            case .received: return .received
            case .read: return .read
            case .aborted: return .aborted
            }
        }
    }

    struct Chunk {
        let offset: Int
        let size: Int
        var sentAt: Instant?
        var acked = false
    }

    let id: UInt64
    let destination: IPv6Address
    let isReply: Bool
    let topic: [UInt8]
    let data: [UInt8]
    let created: Instant
    let deadline: Instant
    var state = State.initial
    var chunks: [Chunk] = []
    /// The first chunk never sent.
    var nextUnsent = 0
    var inFlight = 0
    var ackedCount = 0
    /// When INIT or DONE was last sent.
    var lastSent = Instant.zero
    /// BLAKE3 of the data, computed for the first DONE.
    var checksum: [UInt8]?

    init(id: UInt64, destination: IPv6Address, isReply: Bool, topic: [UInt8], data: [UInt8], created: Instant, deadline: Instant) {
        self.id = id
        self.destination = destination
        self.isReply = isReply
        self.topic = topic
        self.data = data
        self.created = created
        self.deadline = deadline
    }

    var status: MessageStatus {
        MessageStatus(destination: destination, state: state.status(chunks: chunks), created: created, deadline: deadline,
                      length: data.count)
    }

    /// ceil(length / 1300) chunks, as Rust's receiver expects, with the data spread evenly over
    /// them: each is 650–1300 bytes when there are two or more, so none is "short" (spec §7.3).
    static func split(length: Int) -> [Chunk] {
        let n = MessageProtocol.chunkCount(length: length)
        return (0..<n).map { i in
            let start = i * length / n, end = (i + 1) * length / n
            return Chunk(offset: start, size: end - start)
        }
    }

    func chunkPacket(_ i: Int) -> [UInt8] {
        let c = chunks[i]
        return MessagePacket(id: id, body: .chunk(index: UInt64(i), offset: UInt64(c.offset),
                                                  data: Array(data[c.offset ..< c.offset + c.size]))).encode()
    }

    /// INIT was acknowledged: split, and send the first window (or DONE for an empty message).
    mutating func start(now: Instant, window: Int, into actions: inout [MessageStack.Action]) {
        state = .inProgress
        chunks = Outbound.split(length: data.count)
        sendChunks(now: now, window: window, into: &actions)
        if chunks.isEmpty { sendDone(now: now, into: &actions) }
    }

    /// Chunk `i` was acknowledged: the window moves on; DONE once all are.
    mutating func acknowledge(_ i: Int, now: Instant, window: Int, into actions: inout [MessageStack.Action]) {
        guard chunks[i].sentAt != nil, !chunks[i].acked else { return }
        chunks[i].acked = true
        ackedCount += 1
        inFlight -= 1
        sendChunks(now: now, window: window, into: &actions)
        if ackedCount == chunks.count { sendDone(now: now, into: &actions) }
    }

    /// Sends never-sent chunks while fewer than `window` are unacknowledged.
    mutating func sendChunks(now: Instant, window: Int, into actions: inout [MessageStack.Action]) {
        while inFlight < window, nextUnsent < chunks.count {
            chunks[nextUnsent].sentAt = now
            actions.append(.send(chunkPacket(nextUnsent), to: destination))
            nextUnsent += 1
            inFlight += 1
        }
    }

    /// Resends chunks unacknowledged for a retransmission interval; returns how many.
    mutating func resendStale(now: Instant, into actions: inout [MessageStack.Action]) -> Int {
        guard inFlight > 0 else { return 0 }
        var resent = 0
        for i in 0..<nextUnsent where !chunks[i].acked {
            if let t = chunks[i].sentAt, now - t >= MessageProtocol.retransmitMs {
                chunks[i].sentAt = now
                actions.append(.send(chunkPacket(i), to: destination))
                resent += 1
            }
        }
        return resent
    }

    mutating func sendDone(now: Instant, into actions: inout [MessageStack.Action]) {
        lastSent = now
        if checksum == nil { checksum = BLAKE3.hash(data) }
        actions.append(.send(MessagePacket(id: id, body: .done(chunkCount: UInt64(chunks.count), checksum: checksum!)).encode(),
                             to: destination))
    }
}

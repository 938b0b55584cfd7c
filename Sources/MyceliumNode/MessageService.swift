public import MyceliumCore
import MyceliumCrypto
public import MyceliumDatapath
public import MyceliumRouting
public import NIOCore
import NIOPosix

/// The message bus's shell on the datapath's loop: feeds `MessageStack` (the rules, spec §7),
/// sends its packets through the datapath, answers the API's pushes and pops, and talks to the
/// topics' forward sockets.
///
/// Flow: API push → `push` → INIT through `Datapath.sendMessage`; data packet of type message →
/// `received` → ACKs sent, a complete message handed to the push waiting for it, a forward
/// socket, or the inbox (waking a pop). Timers: every 100 ms while a message is being sent,
/// else the datapath's once-a-second tick.
///
/// Confinement: every method runs on the datapath's loop (asserted); `@unchecked Sendable` only
/// so the node's async API can hand it closures it runs on that loop.
public final class MessageService: @unchecked Sendable {
    public enum PopError: Error {
        /// Too many API calls wait for a message already.
        case tooManyWaiters
    }

    /// API calls waiting for a message at once (beyond: refused).
    public static let maxPopWaiters = 256
    /// Forward-socket exchanges at once (beyond: the message goes to the inbox).
    public static let maxForwards = 64
    /// Pushes waiting for their reply at once (beyond: refused as busy).
    public static let maxReplyWaiters = 256

    private let loop: any EventLoop
    private var core: MessageStack
    private var actions: [MessageStack.Action] = []
    private var performing = false
    /// Sends one packet through the datapath (our address → `to`).
    var send: (([UInt8], IPv6Address) -> Void)?
    /// Writes out what the sends queued (the end of a batch).
    var flush: (() -> Void)?
    private let wallOffsetMs: Int64

    private struct PopWaiter {
        let serial: UInt64
        let topic: [UInt8]?
        let peek: Bool
        let promise: EventLoopPromise<ReceivedMessage?>
        let timeout: Scheduled<Void>
    }

    private var popWaiters: [PopWaiter] = []
    private var nextSerial: UInt64 = 0
    private var replyWaiters: [UInt64: (promise: EventLoopPromise<ReceivedMessage?>, timeout: Scheduled<Void>)] = [:]
    private var fastTick: Scheduled<Void>?
    private var forwards = 0
    /// Set by `shutdown`: nothing waits any more (the loop's timers are about to go).
    private var stopped = false

    init(identity: NodeIdentity, loop: any EventLoop, limits: MessageLimits = .standard, topics: TopicConfig, wallOffsetMs: Int64) {
        self.loop = loop
        self.core = MessageStack(address: identity.address, publicKey: identity.publicKey, limits: limits, topics: topics)
        self.wallOffsetMs = wallOffsetMs
    }

    public var stats: MessageStats {
        loop.preconditionInEventLoop()
        return core.stats
    }

    /// Received messages waiting to be read, and their bytes.
    public var inbox: (count: Int, bytes: Int) {
        loop.preconditionInEventLoop()
        return (core.inboxCount, core.inboxByteCount)
    }

    public var topics: TopicConfig {
        get { loop.preconditionInEventLoop(); return core.topics }
        set { loop.preconditionInEventLoop(); core.topics = newValue }
    }

    /// Unix seconds of a point on the monotonic clock.
    public func unixSeconds(_ instant: Instant) -> Int64 { (instant.milliseconds + wallOffsetMs) / 1000 }

    // MARK: the API's calls

    /// Starts sending; with `replyTimeoutMs`, the future answers the reply, or nil when none
    /// came in time (the message id is returned either way).
    public func push(_ data: [UInt8], topic: [UInt8], to destination: IPv6Address, replyTimeoutMs: Int64?)
        throws(MessageStack.PushError) -> (id: UInt64, reply: EventLoopFuture<ReceivedMessage?>?) {
        loop.preconditionInEventLoop()
        if replyTimeoutMs != nil, stopped || replyWaiters.count >= Self.maxReplyWaiters { throw .busy }
        let id = try core.push(data, topic: topic, to: destination, expectReply: replyTimeoutMs != nil, now: RouterService.now(),
                               into: &actions)
        var reply: EventLoopFuture<ReceivedMessage?>?
        if let replyTimeoutMs {
            let promise = loop.makePromise(of: ReceivedMessage?.self)
            let timeout = loop.scheduleTask(in: .milliseconds(max(0, replyTimeoutMs))) { [weak self] in
                guard let self, let waiter = self.replyWaiters.removeValue(forKey: id) else { return }
                self.core.stopExpectingReply(id)
                waiter.promise.succeed(nil)
            }
            replyWaiters[id] = (promise, timeout)
            reply = promise.futureResult
        }
        performTopLevel()
        return (id, reply)
    }

    /// Sends `data` as the reply to message `id` (REPLY flag, same id).
    public func reply(to id: UInt64, _ data: [UInt8], destination: IPv6Address) throws(MessageStack.PushError) {
        loop.preconditionInEventLoop()
        _ = try core.push(data, to: destination, replyTo: id, now: RouterService.now(), into: &actions)
        performTopLevel()
    }

    /// The oldest message (on `topic`), waiting up to `timeoutMs` for one; nil if none came.
    public func pop(topic: [UInt8]?, peek: Bool, timeoutMs: Int64) throws(PopError) -> EventLoopFuture<ReceivedMessage?> {
        loop.preconditionInEventLoop()
        if let message = core.pop(topic: topic, peek: peek, into: &actions) {
            performTopLevel()
            return loop.makeSucceededFuture(message)
        }
        guard timeoutMs > 0, !stopped else { return loop.makeSucceededFuture(nil) }
        guard popWaiters.count < Self.maxPopWaiters else { throw .tooManyWaiters }
        let promise = loop.makePromise(of: ReceivedMessage?.self)
        nextSerial += 1
        let serial = nextSerial
        let timeout = loop.scheduleTask(in: .milliseconds(timeoutMs)) { [weak self] in
            guard let self, let i = self.popWaiters.firstIndex(where: { $0.serial == serial }) else { return }
            self.popWaiters.remove(at: i).promise.succeed(nil)
        }
        popWaiters.append(PopWaiter(serial: serial, topic: topic, peek: peek, promise: promise, timeout: timeout))
        return promise.futureResult
    }

    public func status(of id: UInt64) -> MessageStatus? {
        loop.preconditionInEventLoop()
        return core.status(of: id)
    }

    // MARK: the datapath's calls

    func received(_ packet: [UInt8], from source: IPv6Address, key: PublicKey, to destination: IPv6Address) {
        loop.preconditionInEventLoop()
        core.received(packet, from: source, sourceKey: key, to: destination, now: RouterService.now(), into: &actions)
        perform()
    }

    /// The datapath's once-a-second tick (deadlines, expiry; retransmissions have their own timer).
    func tick() {
        loop.preconditionInEventLoop()
        core.tick(now: RouterService.now(), into: &actions)
        perform()
    }

    /// Fails what waits (the node stops).
    func shutdown() {
        loop.preconditionInEventLoop()
        stopped = true
        fastTick?.cancel()
        fastTick = nil
        for w in popWaiters { w.timeout.cancel(); w.promise.succeed(nil) }
        popWaiters.removeAll()
        for (_, w) in replyWaiters { w.timeout.cancel(); w.promise.succeed(nil) }
        replyWaiters.removeAll()
    }

    // MARK: performing actions

    private func performTopLevel() {
        perform()
        flush?()
    }

    private func perform() {
        // Re-entered when a packet to ourselves comes straight back: the outer call goes on.
        guard !performing else { return }
        performing = true
        defer { performing = false }
        var rounds = 0
        while !actions.isEmpty, rounds < Self.performRounds {
            rounds += 1
            let batch = actions
            actions.removeAll(keepingCapacity: true)
            for action in batch {
                switch action {
                case let .send(packet, to):
                    send?(packet, to)
                case let .reply(message):
                    if let waiter = replyWaiters.removeValue(forKey: message.id) {
                        waiter.timeout.cancel()
                        waiter.promise.succeed(message)
                    } else {
                        core.enqueue(message, into: &actions)
                    }
                case let .forward(message, socket):
                    forward(message, to: socket)
                case .inboxChanged:
                    wakePopWaiters()
                }
            }
        }
        armFastTick()
        if !actions.isEmpty, !stopped {
            // Each round's work is bounded, so are the rounds: the rest goes on the next turn.
            loop.execute { [weak self] in self?.performTopLevel() }
        }
    }

    static let performRounds = 64

    private func wakePopWaiters() {
        var i = 0
        while i < popWaiters.count {
            let w = popWaiters[i]
            if let message = core.pop(topic: w.topic, peek: w.peek, into: &actions) {
                popWaiters.remove(at: i)
                w.timeout.cancel()
                w.promise.succeed(message)
            } else {
                i += 1
            }
        }
    }

    private func armFastTick() {
        guard core.isSending, fastTick == nil else { return }
        fastTick = loop.scheduleTask(in: .milliseconds(MessageProtocol.retransmitMs)) { [weak self] in
            guard let self else { return }
            self.fastTick = nil
            self.core.tick(now: RouterService.now(), into: &self.actions)
            self.performTopLevel()
        }
    }

    // MARK: forward sockets

    /// Rust's exchange: connect, write the data, read the answer until the socket closes, send
    /// it back as a reply. Failing that (or with too many at once), the message goes to the inbox.
    private func forward(_ message: ReceivedMessage, to path: String) {
        guard forwards < Self.maxForwards else {
            core.enqueue(message, into: &actions)
            return
        }
        forwards += 1
        let collector = ReplyCollector(limit: core.limits.maxMessageSize, done: loop.makePromise())
        let timeout = loop.scheduleTask(in: .milliseconds(MessageProtocol.socketReplyTimeoutMs)) {
            collector.fail(ForwardFailure.timeout)
        }
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(MessageProtocol.socketReplyTimeoutMs))
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) } }
            .connect(unixDomainSocketPath: path)
            .whenComplete { result in
                switch result {
                case let .success(channel):
                    channel.writeAndFlush(ByteBuffer(bytes: message.data), promise: nil)
                    collector.done.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case let .failure(error):
                    collector.fail(error)
                }
            }
        let exchange = collector.done.futureResult.always { _ in timeout.cancel() }
        exchange.hop(to: loop).whenComplete { [weak self] result in
            guard let self else { return }
            self.forwards -= 1
            switch result {
            case let .success(answer) where !answer.isEmpty:
                do {
                    _ = try self.core.push(answer, to: message.source, replyTo: message.id, now: RouterService.now(), into: &self.actions)
                } catch {
                    self.core.enqueue(message, into: &self.actions)  // the answer cannot go: keep the question
                }
            default:
                self.core.enqueue(message, into: &self.actions)
            }
            self.performTopLevel()
        }
    }

    enum ForwardFailure: Error {
        case timeout, tooLarge, closed
    }

    /// Collects a forward socket's answer until it closes (bounded by the message size limit).
    private final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: used on its channel's loop only, which is the datapath's loop (one group).
        typealias InboundIn = ByteBuffer
        let limit: Int
        var bytes: [UInt8] = []
        let done: EventLoopPromise<[UInt8]>
        private var finished = false

        init(limit: Int, done: EventLoopPromise<[UInt8]>) {
            self.limit = limit
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard !finished else { return }
            guard bytes.count + buffer.readableBytes <= limit else {
                fail(ForwardFailure.tooLarge)
                context.close(promise: nil)
                return
            }
            bytes += buffer.readableBytesView
        }

        func channelInactive(context: ChannelHandlerContext) { succeed() }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(error)
            context.close(promise: nil)
        }

        func fail(_ error: any Error) {
            guard !finished else { return }
            finished = true
            done.fail(error)
        }

        func succeed() {
            guard !finished else { return }
            finished = true
            done.succeed(bytes)
        }
    }
}

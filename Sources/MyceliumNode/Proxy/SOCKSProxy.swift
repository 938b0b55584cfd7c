public import MyceliumCore
public import NIOCore
import NIOPosix
import Synchronization

/// Rust Mycelium's SOCKS5 helper (spec §13): find open SOCKS5 proxies on the overlay, and relay
/// local connections to one.
///
/// Probing (while on): every 60 s, each node we have a selected route to is asked, on TCP
/// `[its address]:1080`, for the greeting `05 01 00`; `05 00` is an open proxy, `05 FF` one that
/// wants authentication, anything else not a proxy, no answer within 5 s nothing. Connecting
/// binds `[::]:1080` and copies every accepted connection to the chosen proxy, byte for byte (no
/// SOCKS logic here: the client talks SOCKS to the remote proxy through us). With no proxy named,
/// the first known open proxy to answer a fresh greeting wins.
///
/// Bounds: 64 probes at a time, 4096 probe results, 256 relayed connections (more are closed).
/// State sits behind one `Mutex`; I/O runs on the node's loop.
public final class SOCKSProxy: Sendable {
    public enum Status: Sendable, Equatable {
        case notListening, valid, authenticationRequired, notAProxy
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let port = 1080
    static let probeIntervalSeconds: Int64 = 60
    static let probeTimeoutSeconds: Int64 = 5
    static let maxConcurrentProbes = 64
    static let maxResults = 4096
    static let maxRelays = 256

    private struct State {
        var results: [IPv6Address: Status] = [:]
        var probing: RepeatedTask?
        var listener: (any Channel)?
        var target: SocketAddress?
        var relays = 0
        /// Bumped by every connect and disconnect: a connect that finds it moved while it bound
        /// lost the race and closes what it bound.
        var generation = 0
    }

    private let state = Mutex(State())
    private let loop: any EventLoop
    /// The overlay addresses of the nodes we have a selected route to.
    private let candidates: @Sendable () async -> [IPv6Address]
    /// Where to listen when connected (tests use another port).
    private let listenPort: Int

    public init(loop: any EventLoop, listenPort: Int = SOCKSProxy.port, candidates: @escaping @Sendable () async -> [IPv6Address]) {
        self.loop = loop
        self.listenPort = listenPort
        self.candidates = candidates
    }

    /// Open proxies found so far, by address.
    public var known: [IPv6Address] {
        state.withLock { s in s.results.filter { $0.value == .valid }.map(\.key).sorted() }
    }

    public var isProbing: Bool { state.withLock { $0.probing != nil } }
    public var connectedTarget: SocketAddress? { state.withLock { $0.target } }

    // MARK: probing

    /// Starts probing; a no-op while probing already (one round at a time).
    public func startProbing() {
        guard state.withLock({ $0.probing == nil }) else { return }
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: .seconds(Self.probeIntervalSeconds)) { [self] _ in
            let promise = loop.makePromise(of: Void.self)
            promise.completeWithTask { await self.probeAll() }
            return promise.futureResult
        }
        let raced = state.withLock { s -> Bool in
            guard s.probing == nil else { return true }
            s.probing = task
            return false
        }
        if raced { task.cancel() }
    }

    public func stopProbing() {
        state.withLock { s -> RepeatedTask? in defer { s.probing = nil }; return s.probing }?.cancel()
    }

    /// One round: every candidate, at most `maxConcurrentProbes` at a time.
    func probeAll() async {
        let addresses = Array(await candidates().prefix(Self.maxResults))
        var next = 0
        await withTaskGroup(of: (IPv6Address, Status).self) { group in
            func addNext() {
                guard next < addresses.count else { return }
                let address = addresses[next]
                next += 1
                group.addTask { (address, await self.probe(address, port: Self.port)) }
            }
            for _ in 0..<Self.maxConcurrentProbes { addNext() }
            for await (address, status) in group {
                state.withLock { s in
                    if s.results[address] != nil || s.results.count < Self.maxResults { s.results[address] = status }
                }
                addNext()
            }
        }
    }

    /// Greets `[address]:port` and classifies the answer.
    func probe(_ address: IPv6Address, port: Int) async -> Status {
        guard let socket = try? SocketAddress(ipAddress: address.description, port: port) else { return .notListening }
        let answer = loop.makePromise(of: [UInt8].self)
        // Everything that may answer (reply, close, error, timeout, failed connect) runs on `loop`
        // and goes through the handler, which completes the promise once.
        let greeter = GreetingHandler(answer: answer)
        let timeout = loop.scheduleTask(in: .seconds(Self.probeTimeoutSeconds)) { greeter.complete(.failure(Failure(description: "timeout"))) }
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(Self.probeTimeoutSeconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(greeter) }
            }
            .connect(to: socket)
        connected.whenFailure { greeter.complete(.failure($0)) }
        let reply = try? await answer.futureResult.get()
        timeout.cancel()
        if let channel = try? await connected.get() { try? await channel.close() }
        switch reply {
        case [0x05, 0x00]?: return .valid
        case [0x05, 0xFF]?: return .authenticationRequired
        case nil: return .notListening
        default: return .notAProxy
        }
    }

    /// Sends the greeting on connect and hands back the first two bytes of the answer.
    private final class GreetingHandler: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked: used on its channel's loop only.
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let answer: EventLoopPromise<[UInt8]>
        var received: [UInt8] = []
        private var finished = false

        init(answer: EventLoopPromise<[UInt8]>) { self.answer = answer }

        /// The promise is completed once, whoever comes first.
        func complete(_ result: Result<[UInt8], any Error>) {
            guard !finished else { return }
            finished = true
            answer.completeWith(result)
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [0x05, 0x01, 0x00])), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !finished else { return }
            received += unwrapInboundIn(data).readableBytesView
            if received.count >= 2 {
                complete(.success(Array(received.prefix(2))))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            complete(.failure(Failure(description: "closed")))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            complete(.failure(error))
            context.close(promise: nil)
        }
    }

    // MARK: relaying

    /// Relays `[::]:1080` to `remote`, or to the first known open proxy that answers now.
    public func connect(to remote: SocketAddress?) async throws(Failure) -> SocketAddress {
        var target = remote
        if target == nil {
            let found: IPv6Address? = await withTaskGroup(of: IPv6Address?.self) { group in
                for address in known { group.addTask { await self.probe(address, port: Self.port) == .valid ? address : nil } }
                for await winner in group where winner != nil {
                    group.cancelAll()
                    return winner
                }
                return nil
            }
            guard let found, let socket = try? SocketAddress(ipAddress: found.description, port: Self.port) else {
                throw Failure(description: "no valid SOCKS5 proxy found to connect to")
            }
            target = socket
        }
        // The old listener must be gone before [::]:1080 is bound again.
        let (old, generation) = state.withLock { s -> ((any Channel)?, Int) in
            defer { s.listener = nil; s.target = nil; s.generation += 1 }
            return (s.listener, s.generation + 1)
        }
        if let old { try? await old.close() }
        let chosen = target!
        let listener: any Channel
        do {
            listener = try await ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelInitializer { [self] inbound in self.relay(inbound, to: chosen) }
                .bind(host: "::", port: listenPort).get()
        } catch {
            throw Failure(description: "cannot listen on [::]:\(listenPort): \(error)")
        }
        let current = state.withLock { s -> Bool in
            guard s.generation == generation else { return false }
            s.listener = listener
            s.target = chosen
            return true
        }
        guard current else {
            try? await listener.close()
            throw Failure(description: "disconnected while connecting")
        }
        return chosen
    }

    public func disconnect() {
        let listener = state.withLock { s -> (any Channel)? in
            defer { s.listener = nil; s.target = nil; s.generation += 1 }
            return s.listener
        }
        listener?.close(promise: nil)
    }

    /// The port the relay listens on (tests bind port 0).
    public var boundPort: Int? { state.withLock { $0.listener?.localAddress?.port } }

    private func relay(_ inbound: any Channel, to target: SocketAddress) -> EventLoopFuture<Void> {
        let admitted = state.withLock { s -> Bool in
            guard s.relays < Self.maxRelays else { return false }
            s.relays += 1
            return true
        }
        guard admitted else { return inbound.close() }
        inbound.closeFuture.whenComplete { [self] _ in state.withLock { $0.relays -= 1 } }
        // The child is registered once this initializer is done: the far side is dialled when
        // it becomes active, and the child is read only once both ends are glued.
        return inbound.eventLoop.makeCompletedFuture {
            try inbound.pipeline.syncOperations.addHandler(RelayStarter(target: target))
        }
    }
}

/// Dials the proxy when an accepted connection becomes active, then glues the two together.
final class RelayStarter: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: used on its channel's loop only.
    typealias InboundIn = NIOAny
    let target: SocketAddress

    init(target: SocketAddress) { self.target = target }

    func channelActive(context: ChannelHandlerContext) {
        let inbound = context.channel
        let pipeline = context.pipeline
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.seconds(SOCKSProxy.probeTimeoutSeconds))
            .connect(to: target)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case let .success(outbound):
                    let (a, b) = GlueHandler.pair()
                    do {
                        try outbound.pipeline.syncOperations.addHandler(b)
                        try pipeline.syncOperations.addHandler(a)
                        pipeline.syncOperations.removeHandler(self, promise: nil)
                        inbound.setOption(.autoRead, value: true).whenComplete { _ in inbound.read() }
                    } catch {
                        outbound.close(promise: nil)
                        inbound.close(promise: nil)
                    }
                case .failure:
                    inbound.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }
}

/// Copies bytes between two channels, each side read only while the other can take writes.
final class GlueHandler: ChannelDuplexHandler, @unchecked Sendable {
    // @unchecked: both channels of a pair live on one loop (the child's), and each handler is
    // touched on it only.
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (GlueHandler, GlueHandler) {
        let a = GlueHandler(), b = GlueHandler()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
public import Logging
import MyceliumCNI
public import MyceliumCore
import MyceliumJSON
import MyceliumSystem
import NIOCore
import NIOPosix
import Synchronization

/// The node's CNI agent: serves the `mycelium-cni` plugin over a Unix socket (0600), keeps
/// IPAM in the state directory, and wires containers.
///
/// Flow: socket line → `AgentRequest` → the single worker thread (requests are serialised, so
/// IPAM needs no lock and the runtime's parallel ADDs for different containers are safe) →
/// IPAM + `ContainerWiring` → reply line → close. IPAM is saved (atomically) before wiring on
/// ADD and after unwiring on DEL, so a crash at any point leaves a record that the runtime's
/// DEL or GC cleans up, never an address handed out twice.
///
/// Sendable (checked): every mutable piece is behind a `Mutex` or an `Atomic`; IPAM and the
/// wiring (`Worker`) are only touched under `worker`'s lock.
public final class CNIAgent: Sendable {
    public struct Configuration: Sendable {
        public var socketPath = "/run/mycelium/cni.sock"
        public var stateDirectory = "/var/lib/mycelium"
        /// Write the conflist here once the socket answers (`--cni-conflist`).
        public var conflist: ConflistSettings?

        public init() {}
        public var ipamPath: String { stateDirectory + "/cni-ipam.json" }
    }

    private let configuration: Configuration
    private let subnet: Subnet
    private let nodeAddress: IPv6Address
    private let isReady: @Sendable () -> Bool
    private let logger: Logger
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Set by `start`, closed by `shutdown`.
    private let channel = Mutex<(any Channel)?>(nil)
    /// Retries of the conflist in chained mode while the other network's is missing.
    private let conflistRetry = Mutex<RepeatedTask?>(nil)
    /// How often a chained conflist is retried while it cannot be written.
    static let conflistRetryInterval: TimeAmount = .seconds(2)
    /// IPAM and the wiring: filled in by `start` before the socket is bound, then used by the
    /// worker thread (requests are serialised there, so the lock is never contended).
    private let worker: Mutex<Worker>
    /// `ipam.count` after the last request, read without waiting for one in progress.
    private let count = Mutex(0)
    /// Plugin connections open at once (`maxConnections`).
    private let connections = Atomic<Int>(0)
    /// Requests the agent serves at once; more are refused (the kubelet retries).
    public static let maxConnections = 64
    /// A connection must have sent its request line within this long.
    static let requestTimeout: TimeAmount = .seconds(10)

    public init(configuration: Configuration, subnet: Subnet, nodeAddress: IPv6Address, logger: Logger,
                isReady: @escaping @Sendable () -> Bool) {
        self.configuration = configuration
        self.subnet = subnet
        self.nodeAddress = nodeAddress
        self.logger = logger
        self.isReady = isReady
        worker = Mutex(Worker(ipam: IPAM(subnet: subnet, nodeAddress: nodeAddress), wiring: nil,
                              ipamPath: configuration.ipamPath, isReady: isReady, logger: logger))
    }

    /// The worker thread's state (see `worker`).
    struct Worker {
        var ipam: IPAM
        var wiring: ContainerWiring?
        let ipamPath: String
        let isReady: @Sendable () -> Bool
        let logger: Logger
    }

    /// Attachments currently recorded (any thread).
    public var attachmentCount: Int { count.withLock { $0 } }

    public struct StartFailure: Error, CustomStringConvertible {
        public let description: String
    }

    static let forwardingSysctl = "/proc/sys/net/ipv6/conf/all/forwarding"

    /// Containers' packets are forwarded between their veths and the TUN. An unprivileged pod sees
    /// /proc/sys read-only, so a host (or init container) that already enabled it is not written.
    static func enableForwarding() throws {
        if (try? TextFile.read(forwardingSysctl))?.hasPrefix("1") == true { return }
        do { try TextFile.overwrite(forwardingSysctl, "1") } catch {
            throw StartFailure(description: "net.ipv6.conf.all.forwarding is 0 and cannot be set (\(error)); "
                + "set it on the host (sysctl -w net.ipv6.conf.all.forwarding=1) or run the agent where /proc/sys is writable")
        }
    }

    public func start() async throws {
        pool.start()
        do {
            try TextFile.makeDirectories(configuration.stateDirectory, mode: 0o700)
            let (loaded, dropped) = try IPAM.load(path: configuration.ipamPath, subnet: subnet, nodeAddress: nodeAddress)
            if dropped > 0 {
                logger.warning("CNI: dropped attachments of another /64 (the node key changed)", metadata: ["count": "\(dropped)"])
            }
            try worker.withLock { w in
                w.ipam = loaded
                w.wiring = try ContainerWiring()
            }
        } catch {
            throw StartFailure(description: "cannot start the CNI agent (--state-dir \(configuration.stateDirectory)): \(error)")
        }
        try Self.enableForwarding()
        let restored = worker.withLock { w in
            for record in w.ipam.records.values { w.wiring?.restoreRoute(record) }
            return w.ipam.count
        }
        count.withLock { $0 = restored }
        let socketDirectory = configuration.socketPath.lastIndex(of: "/").map { String(configuration.socketPath[..<$0]) } ?? "."
        do {
            if !socketDirectory.isEmpty { try TextFile.makeDirectories(socketDirectory, mode: 0o755) }
            let channel = try await ServerBootstrap(group: group)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Bounded: every plugin run holds one connection for one request.
                        guard connections.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                            connections.subtract(1, ordering: .relaxed)
                            logger.warning("CNI: connection refused", metadata: ["limit": "\(Self.maxConnections) at once"])
                            throw CNIError(CNIError.tryAgainLater, "too many CNI requests at once")
                        }
                        channel.closeFuture.whenComplete { [self] _ in connections.subtract(1, ordering: .relaxed) }
                        try channel.pipeline.syncOperations.addHandler(RequestHandler(agent: self))
                    }
                }
                .bind(unixDomainSocketPath: configuration.socketPath, cleanupExistingSocketFile: true).get()
            guard chmod(configuration.socketPath, 0o600) == 0 else { throw SystemError("chmod \(configuration.socketPath)", errno: errno) }
            self.channel.withLock { $0 = channel }
        } catch {
            throw StartFailure(description: "cannot serve --cni-socket \(configuration.socketPath): \(error)")
        }
        logger.info("CNI agent ready", metadata: ["socket": "\(configuration.socketPath)", "subnet": "\(subnet)",
                                                  "attachments": "\(attachmentCount)", "state": "\(configuration.ipamPath)"])
        try installConflist()
    }

    /// Writes the conflist now that the socket answers. A primary conflist that cannot be written
    /// stops the start; a chained one waits (retried every 2 s) for the network it chains onto.
    private func installConflist() throws {
        guard let settings = configuration.conflist else { return }
        let socket = configuration.socketPath
        switch ConflistInstaller.attempt(settings, socket: socket) {
        case let .written(what):
            logger.info("CNI conflist written", metadata: ["path": "\(what)"])
        case .unchanged:
            logger.info("CNI conflist already in place", metadata: ["path": "\(settings.path)"])
        case let .impossible(why), let .failed(why):
            throw StartFailure(description: "invalid value for --cni-conflist (MYCELIUM_CNI_CONFLIST): \(why)")
        case let .waiting(why):
            logger.info("CNI conflist waits for the cluster network's", metadata: ["reason": "\(why)"])
            let logger = self.logger
            let lastReason = Mutex(why)
            let task = group.next().scheduleRepeatedTask(initialDelay: Self.conflistRetryInterval, delay: Self.conflistRetryInterval) { task in
                switch ConflistInstaller.attempt(settings, socket: socket) {
                case let .written(what):
                    logger.info("CNI conflist written", metadata: ["path": "\(what)"])
                    task.cancel()
                case .unchanged:
                    task.cancel()
                case let .impossible(why):
                    logger.error("CNI conflist cannot be written", metadata: ["reason": "\(why)"])
                    task.cancel()
                case let .waiting(why), let .failed(why):
                    let changed = lastReason.withLock { last in defer { last = why }; return last != why }
                    if changed { logger.warning("CNI conflist not written yet", metadata: ["reason": "\(why)"]) }
                }
            }
            conflistRetry.withLock { $0 = task }
        }
    }

    /// Stops serving; the conflist stays (see `ConflistSettings`).
    public func shutdown() async {
        conflistRetry.withLock { $0?.cancel(); $0 = nil }
        let bound = channel.withLock { $0 }
        try? await bound?.close().get()
        unlink(configuration.socketPath)
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    /// Runs `request` on the worker thread.
    func submit(_ request: AgentRequest, on loop: any EventLoop) -> EventLoopFuture<AgentReply> {
        pool.runIfActive(eventLoop: loop) { [self] in handle(request) }
    }

    // MARK: on the worker thread

    func handle(_ request: AgentRequest) -> AgentReply {
        let (reply, attachments) = worker.withLock { w -> (AgentReply, Int) in
            let result: AgentReply
            do throws(CNIError) {
                result = try w.perform(request)
            } catch {
                result = .failure(error)
            }
            return (result, w.ipam.count)
        }
        count.withLock { $0 = attachments }
        switch reply {
        case let .failure(error):
            logger.warning("CNI \(request.command.rawValue) failed", metadata: ["container": "\(request.key.containerID)",
                                                                             "ifname": "\(request.key.ifname)", "error": "\(error)"])
        case let .attachment(a):
            logger.info("CNI ADD", metadata: ["container": "\(a.key.containerID)", "ifname": "\(a.key.ifname)",
                                              "address": "\(a.address)", "host": "\(a.hostInterface)"])
        case .ok:
            logger.debug("CNI \(request.command.rawValue)", metadata: ["container": "\(request.key.containerID)"])
        }
        return reply
    }
}

// MARK: under `worker`'s lock

extension CNIAgent.Worker {
    fileprivate mutating func perform(_ request: AgentRequest) throws(CNIError) -> AgentReply {
        guard let wiring else { throw CNIError(CNIError.tryAgainLater, "the CNI agent is starting") }
        switch request.command {
        case .add:
            guard isReady() else { throw CNIError(CNIError.tryAgainLater, "the node's TUN device is not ready") }
            guard ipam.records[request.key] == nil else {
                throw CNIError(CNIError.attachmentExists, "container \(request.key.containerID) already has \(request.key.ifname); DEL it first")
            }
            guard ipam.count < IPAM.maxRecords, let address = ipam.address(for: request.key) else {
                throw CNIError(CNIError.addressesExhausted, "no address left for the container",
                               details: "\(ipam.count) attachments recorded (at most \(IPAM.maxRecords))")
            }
            // Reserve first (persisted), wire second: a crash in between leaves a record for DEL.
            var reservation = Attachment(key: request.key, hostInterface: ContainerWiring.hostInterfaceName(for: request.key),
                                         hostMac: "", interface: request.interface, mac: "", sandbox: request.netns, mtu: request.mtu,
                                         address: "\(address)/128", gateway: "\(ContainerWiring.gateway)", routes: [])
            try record(reservation)
            do {
                reservation = try wiring.attach(request, address: address)
            } catch {
                ipam.release(request.key)
                try? save()
                throw error
            }
            ipam.release(request.key)
            try record(reservation)
            return .attachment(reservation)
        case .del:
            let host = ipam.records[request.key]?.hostInterface ?? ContainerWiring.hostInterfaceName(for: request.key)
            try wiring.detach(hostInterface: host)
            if ipam.release(request.key) != nil { try save() }
            return .ok
        case .check:
            guard let record = ipam.records[request.key] else {
                throw CNIError(CNIError.checkFailed, "no attachment for container \(request.key.containerID) \(request.key.ifname)")
            }
            try wiring.check(record)
            guard isReady() else { throw CNIError(CNIError.checkFailed, "the node's TUN device is not ready") }
            return .ok
        case .gc:
            let valid = Set(request.validAttachments)
            for key in ipam.records.keys.sorted() where !valid.contains(key) {
                try wiring.detach(hostInterface: ipam.records[key]!.hostInterface)
                ipam.release(key)
                logger.info("CNI GC released", metadata: ["container": "\(key.containerID)", "ifname": "\(key.ifname)"])
            }
            try save()
            return .ok
        case .status:
            guard isReady() else { throw CNIError(CNIError.notAvailable, "the node's TUN device is not ready") }
            return .ok
        case .version:
            return .ok
        }
    }

    private mutating func record(_ attachment: Attachment) throws(CNIError) {
        do { try ipam.record(attachment) } catch {
            throw CNIError(CNIError.attachmentExists, "container \(attachment.key.containerID) already has \(attachment.key.ifname)")
        }
        do { try save() } catch {
            ipam.release(attachment.key)
            throw error
        }
    }

    private func save() throws(CNIError) {
        do { try ipam.save(path: ipamPath) } catch {
            throw CNIError(CNIError.ioFailure, "cannot save IPAM state", details: "\(error)")
        }
    }
}

/// One request per connection: read a line, answer a line, close.
private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let agent: CNIAgent
    private var buffer: [UInt8] = []
    private var answered = false

    private var deadline: Scheduled<Void>?

    init(agent: CNIAgent) { self.agent = agent }

    func handlerAdded(context: ChannelHandlerContext) {
        // A client that connects and never finishes its line must not hold a slot for ever.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: CNIAgent.requestTimeout) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        buffer += unwrapInboundIn(data).readableBytesView
        if let newline = buffer.firstIndex(of: 0x0A) {
            process(Array(buffer[..<newline]), context: context)
        } else if buffer.count > 1 << 20 {
            reply(.failure(CNIError(CNIError.decodeFailure, "request larger than 1 MiB")), context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The plugin half-closes after its request; a request without a newline is complete then.
        if event is ChannelEvent, !answered, !buffer.isEmpty { process(buffer, context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered, !buffer.isEmpty { answered = true }
        context.fireChannelInactive()
    }

    private func process(_ line: [UInt8], context: ChannelHandlerContext) {
        answered = true
        let request: AgentRequest
        do {
            request = try AgentRequest(json: try JSON(parsing: line))
        } catch let error as CNIError {
            return reply(.failure(error), context: context)
        } catch {
            return reply(.failure(CNIError(CNIError.decodeFailure, "the request is not JSON", details: "\(error)")), context: context)
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        agent.submit(request, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case let .success(answer): handler.reply(answer, context: context)
            case let .failure(error): handler.reply(.failure(CNIError(CNIError.tryAgainLater, "the CNI agent is stopping", details: "\(error)")), context: context)
            }
        }
    }

    private func reply(_ answer: AgentReply, context: ChannelHandlerContext) {
        answered = true
        var out = context.channel.allocator.buffer(capacity: 256)
        out.writeString(answer.json.compact + "\n")
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

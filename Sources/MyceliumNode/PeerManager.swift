public import MyceliumCore
public import MyceliumRouting
import MyceliumSystem
public import NIOCore
import NIOPosix

/// Peer connections over TCP (spec §2): a listener, dialling of configured peers, and a re-dial
/// of every configured peer that is not connected every 5 s (no back-off, as Rust).
///
/// Every peer pipeline is `PacketFramingHandler` → `PeerHandler`, on the router's loop. With a
/// firewall mark, sockets are marked before `connect()`, so even the SYN carries it (Rust marks
/// after connect).
public final class PeerManager: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var listenPort: UInt16 = 9651
        public var peers: [Endpoint] = []
        public var firewallMark: UInt32?
        public var redialIntervalMs: Int64 = 5000

        public init(listenPort: UInt16 = 9651, peers: [Endpoint] = [], firewallMark: UInt32? = nil) {
            self.listenPort = listenPort
            self.peers = peers
            self.firewallMark = firewallMark
        }
    }

    public enum PeerType: String, Sendable { case `static`, inbound }
    public enum ConnectionState: String, Sendable { case alive, connecting, dead }

    /// One peer as the API shows it. Times are the router's monotonic clock.
    public struct PeerInfo: Hashable, Sendable {
        public let endpoint: Endpoint
        public let type: PeerType
        public let state: ConnectionState
        /// Bytes over every connection to this peer so far.
        public let txBytes: UInt64
        public let rxBytes: UInt64
        public let discovered: Instant
        public let lastConnected: Instant?
    }

    public enum AddError: Error, Equatable, Sendable {
        case exists
        case unsupportedProtocol(Endpoint.Proto)
    }

    private let configuration: Configuration
    private let service: RouterService
    private let onData: @Sendable (DataPacket, NeighbourId) -> Void
    private var loop: any EventLoop { service.loop }
    private var listener: (any Channel)?
    private var outbound: [Endpoint: OutboundPeer] = [:]
    private var inbound: [ObjectIdentifier: InboundPeer] = [:]
    private var redialTask: RepeatedTask?

    enum OutboundState {
        case idle
        case connecting
        case connected(any Channel)
    }

    struct OutboundPeer {
        var state = OutboundState.idle
        let discovered: Instant
        var lastConnected: Instant?
        /// Bytes of connections that have closed; the open one is read from its handler.
        var closedTx: UInt64 = 0
        var closedRx: UInt64 = 0
    }

    struct InboundPeer {
        let endpoint: Endpoint
        let channel: any Channel
        let connected: Instant
    }

    public init(configuration: Configuration, service: RouterService,
                onData: @escaping @Sendable (DataPacket, NeighbourId) -> Void = { _, _ in }) {
        self.configuration = configuration
        self.service = service
        self.onData = onData
        let now = RouterService.now()
        for peer in configuration.peers where peer.proto == .tcp { outbound[peer] = OutboundPeer(discovered: now) }
    }

    /// Binds the listener on `[::]:port` (dual stack) and starts dialling.
    public func start() async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(Self.userTimeout, value: PeerTuning.tcpUserTimeoutMs)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.installPipeline(on: channel)
                    if let remote = channel.remoteAddress, let endpoint = Self.endpoint(of: remote) {
                        self.inbound[ObjectIdentifier(channel)] = InboundPeer(endpoint: endpoint, channel: channel, connected: RouterService.now())
                        channel.closeFuture.whenComplete { _ in self.inbound[ObjectIdentifier(channel)] = nil }
                    }
                }
            }
            .bind(host: "::", port: Int(configuration.listenPort)).get()
        if let mark = configuration.firewallMark {
            try await channel.setOption(.socketOption(.init(rawValue: SocketMark.optionName)), value: Int(mark)).get()
        }
        listener = channel
        redialTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(configuration.redialIntervalMs)) { [self] _ in
            dialIdlePeers()
        }
        return channel.localAddress!
    }

    /// Closes the listener and every connection.
    public func shutdown() async {
        redialTask?.cancel()
        try? await listener?.close().get()
        let channels: [any Channel] = try! await loop.submit { [self] in
            outbound.values.compactMap { if case let .connected(c) = $0.state { return c }; return nil } + inbound.values.map(\.channel)
        }.get()
        for channel in channels { try? await channel.close().get() }
    }

    /// Whether the peer listener is bound.
    public var isListening: Bool { listener?.isActive ?? false }

    /// Every configured and inbound peer with its state and traffic (on any thread).
    public func peers() async -> [PeerInfo] {
        (try? await loop.submit { [self] in
            let configured = outbound.map { endpoint, peer in
                var tx = peer.closedTx, rx = peer.closedRx
                let state: ConnectionState
                switch peer.state {
                case .idle: state = .dead
                case .connecting: state = .connecting
                case let .connected(channel):
                    state = .alive
                    let c = Self.counters(of: channel)
                    tx += c.bytesOut
                    rx += c.bytesIn
                }
                return PeerInfo(endpoint: endpoint, type: .static, state: state, txBytes: tx, rxBytes: rx,
                                discovered: peer.discovered, lastConnected: peer.lastConnected)
            }
            let accepted = inbound.values.map { peer in
                let c = Self.counters(of: peer.channel)
                return PeerInfo(endpoint: peer.endpoint, type: .inbound, state: .alive, txBytes: c.bytesOut, rxBytes: c.bytesIn,
                                discovered: peer.connected, lastConnected: peer.connected)
            }
            return (configured + accepted).sorted { $0.endpoint.description < $1.endpoint.description }
        }.get()) ?? []
    }

    /// Adds a peer and dials it at once (then every redial interval while it is not connected).
    public func add(_ endpoint: Endpoint) async throws(AddError) {
        guard endpoint.proto == .tcp else { throw .unsupportedProtocol(endpoint.proto) }
        let added = (try? await loop.submit { [self] () -> Bool in
            guard outbound[endpoint] == nil, !inbound.values.contains(where: { $0.endpoint == endpoint }) else { return false }
            outbound[endpoint] = OutboundPeer(discovered: RouterService.now())
            dial(endpoint)
            return true
        }.get()) ?? false
        guard added else { throw .exists }
    }

    /// Removes a configured peer (it is no longer dialled) or drops an inbound connection;
    /// false if no peer has this endpoint.
    public func remove(_ endpoint: Endpoint) async -> Bool {
        let channels = (try? await loop.submit { [self] () -> [any Channel]? in
            if let peer = outbound.removeValue(forKey: endpoint) {
                if case let .connected(channel) = peer.state { return [channel] }
                return []
            }
            let matching = inbound.filter { $0.value.endpoint == endpoint }
            guard !matching.isEmpty else { return nil }
            for key in matching.keys { inbound[key] = nil }
            return matching.values.map(\.channel)
        }.get()) ?? nil
        guard let channels else { return false }
        for channel in channels { try? await channel.close().get() }
        return true
    }

    private static func counters(of channel: any Channel) -> PeerCounters {
        (try? channel.pipeline.syncOperations.handler(type: PacketFramingHandler.self).counters) ?? PeerCounters()
    }

    // MARK: internals (on the loop)

    private func installPipeline(on channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandlers([
            PacketFramingHandler(),
            PeerHandler(service: service, onData: onData),
        ])
    }

    private func dialIdlePeers() {
        for (endpoint, peer) in outbound.sorted(by: { $0.key.description < $1.key.description }) {
            guard case .idle = peer.state else { continue }
            dial(endpoint)
        }
    }

    private func dial(_ endpoint: Endpoint) {
        outbound[endpoint]?.state = .connecting
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(Self.userTimeout, value: PeerTuning.tcpUserTimeoutMs)
            .connectTimeout(.seconds(5))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.installPipeline(on: channel) }
            }
        if let mark = configuration.firewallMark {
            bootstrap = bootstrap.channelOption(.socketOption(.init(rawValue: SocketMark.optionName)), value: Int(mark))
        }
        let host: String = switch endpoint.host {
        case let .ip(ip): ip.description
        case let .name(name): name
        }
        bootstrap.connect(host: host, port: Int(endpoint.port)).whenComplete { [self] result in
            switch result {
            case let .success(channel):
                guard outbound[endpoint] != nil else { channel.close(promise: nil); return }  // removed meanwhile
                outbound[endpoint]?.state = .connected(channel)
                outbound[endpoint]?.lastConnected = RouterService.now()
                // Held here: the pipeline no longer has it once the channel has closed.
                let framing = NIOLoopBound(try? channel.pipeline.syncOperations.handler(type: PacketFramingHandler.self),
                                           eventLoop: channel.eventLoop)
                channel.closeFuture.whenComplete { _ in
                    let c = framing.value?.counters ?? PeerCounters()
                    self.outbound[endpoint]?.closedTx += c.bytesOut
                    self.outbound[endpoint]?.closedRx += c.bytesIn
                    self.outbound[endpoint]?.state = .idle
                }
            case .failure:
                outbound[endpoint]?.state = .idle
            }
        }
    }

    static let userTimeout = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketMark.tcpUserTimeoutOptionName)

    static func endpoint(of address: SocketAddress) -> Endpoint? {
        guard let ip = address.ipAddress.flatMap(IPAddress.init), let port = address.port, port > 0 else { return nil }
        return Endpoint(proto: .tcp, host: .ip(ip), port: UInt16(port))
    }
}

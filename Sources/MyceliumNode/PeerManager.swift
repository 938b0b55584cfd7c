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

    public struct PeerInfo: Hashable, Sendable {
        public let endpoint: Endpoint
        public let type: PeerType
        public let state: ConnectionState
    }

    private let configuration: Configuration
    private let service: RouterService
    private let onData: @Sendable (DataPacket, NeighbourId) -> Void
    private var loop: any EventLoop { service.loop }
    private var listener: (any Channel)?
    private var outbound: [Endpoint: OutboundState] = [:]
    private var inbound: [ObjectIdentifier: (endpoint: Endpoint, channel: any Channel)] = [:]
    private var redialTask: RepeatedTask?

    enum OutboundState {
        case idle
        case connecting
        case connected(any Channel)
    }

    public init(configuration: Configuration, service: RouterService,
                onData: @escaping @Sendable (DataPacket, NeighbourId) -> Void = { _, _ in }) {
        self.configuration = configuration
        self.service = service
        self.onData = onData
        for peer in configuration.peers where peer.proto == .tcp { outbound[peer] = .idle }
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
                        self.inbound[ObjectIdentifier(channel)] = (endpoint, channel)
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
            outbound.values.compactMap { if case let .connected(c) = $0 { return c }; return nil } + inbound.values.map(\.channel)
        }.get()
        for channel in channels { try? await channel.close().get() }
    }

    /// Every configured and inbound peer with its state (on any thread).
    public func peers() async -> [PeerInfo] {
        (try? await loop.submit { [self] in
            outbound.map { endpoint, state in
                let s: ConnectionState = switch state {
                case .idle: .dead
                case .connecting: .connecting
                case .connected: .alive
                }
                return PeerInfo(endpoint: endpoint, type: .static, state: s)
            } + inbound.values.map { PeerInfo(endpoint: $0.endpoint, type: .inbound, state: .alive) }
        }.get()) ?? []
    }

    // MARK: internals (on the loop)

    private func installPipeline(on channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandlers([
            PacketFramingHandler(),
            PeerHandler(service: service, onData: onData),
        ])
    }

    private func dialIdlePeers() {
        for (endpoint, state) in outbound.sorted(by: { $0.key.description < $1.key.description }) {
            guard case .idle = state else { continue }
            dial(endpoint)
        }
    }

    private func dial(_ endpoint: Endpoint) {
        outbound[endpoint] = .connecting
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
                outbound[endpoint] = .connected(channel)
                channel.closeFuture.whenComplete { _ in self.outbound[endpoint] = .idle }
            case .failure:
                outbound[endpoint] = .idle
            }
        }
    }

    static let userTimeout = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketMark.tcpUserTimeoutOptionName)

    static func endpoint(of address: SocketAddress) -> Endpoint? {
        guard let ip = address.ipAddress.flatMap(IPAddress.init), let port = address.port, port > 0 else { return nil }
        return Endpoint(proto: .tcp, host: .ip(ip), port: UInt16(port))
    }
}

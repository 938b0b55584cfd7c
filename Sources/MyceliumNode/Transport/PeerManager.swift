#if canImport(Glibc)
import Glibc
#endif
public import Logging
public import MyceliumCore
public import MyceliumRouting
public import MyceliumQUIC
public import MyceliumCrypto
import MyceliumSystem
public import NIOCore
import NIOPosix
import Synchronization

/// Peer connections over TCP (spec §2): a listener, dialling of configured peers, and a re-dial
/// of every configured peer that is not connected every 5 s (no back-off, as Rust).
///
/// Every peer pipeline is `PacketFramingHandler` → `PeerHandler`, on the datapath's loop; in a
/// private network (spec §3.5) `TLSPSKHandler` comes first, every `tcp://` peer is dialled with
/// TLS and `tls://` peers are accepted. Peers found by LAN discovery (spec §6) are dialled the
/// same way and forgotten after `discoveredPeerAttempts` failed attempts in a row. With a
/// firewall mark, sockets are marked before `connect()`, so even the SYN carries it (Rust marks
/// after connect). A dialled endpoint with `?key=` must prove it holds that key before the
/// router sees it (`KeyProofHandler`); every accepted connection answers such a challenge.
///
/// `@unchecked Sendable`: peer tables and counters live on the datapath's loop (`preconditionInEventLoop` at each entry), the rest in a `Mutex`.
public final class PeerManager: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var listenPort: UInt16 = 9651
        public var peers: [Endpoint] = []
        public var firewallMark: UInt32?
        public var redialIntervalMs: Int64 = 5000
        /// Set in a private network: every connection is TLS 1.3 with the network's PSK.
        public var privateNetwork: TLSPSKContext?
        /// Spec §6: a discovered peer is forgotten after this many failed attempts in a row.
        public var discoveredPeerAttempts = 3
        /// UDP port of the QUIC socket (spec §3.6); nil: no QUIC (`--disable-quic`). A private
        /// network has none either way, as Rust's.
        public var quicListenPort: UInt16?
        /// Put in the QUIC certificate (Rust: the router id's text form).
        public var certificateName = "mycelium"
        /// The node's key: answers peers that pinned it (nil: their challenges are dropped).
        public var identity: SecretKey?
        /// How long a pinned peer has to prove its key.
        public var keyProofTimeoutMs: Int64 = 10_000

        public init(listenPort: UInt16 = 9651, peers: [Endpoint] = [], firewallMark: UInt32? = nil,
                    privateNetwork: TLSPSKContext? = nil, quicListenPort: UInt16? = nil, certificateName: String = "mycelium",
                    identity: SecretKey? = nil) {
            self.listenPort = listenPort
            self.peers = peers
            self.firewallMark = firewallMark
            self.privateNetwork = privateNetwork
            self.quicListenPort = quicListenPort
            self.certificateName = certificateName
            self.identity = identity
        }

        /// QUIC is on: a port is set and the network is not private.
        var quicEnabled: Bool { quicListenPort != nil && privateNetwork == nil }
    }

    /// As Rust's API names them; `dnsDiscovery` (found through `--peer-dns`) is ours.
    public enum PeerType: String, Sendable { case `static`, inbound, linkLocalDiscovery, dnsDiscovery }
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
        /// quic:// with a host name (resolving would block the loop).
        case needsAddress
        /// The endpoint pins this node's own key (a peer relaying our own challenge would pass).
        case ownKey
    }

    /// Why an inbound connection was refused before it became a peer.
    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    private let configuration: Configuration
    /// `configuration.identity`'s public key, computed once (not per connection).
    private let identityKey: PublicKey?
    private let logger: Logger
    private let audit: AuditLog?
    /// New LAN-discovered peers dialled (`PeerTuning.discoveryDialBurst`, `discoveryDialIntervalMs`).
    private var discoveryDials = TokenBucket(burst: PeerTuning.discoveryDialBurst, rate: 1,
                                             perMs: PeerTuning.discoveryDialIntervalMs, now: RouterService.now().milliseconds)
    /// Inbound connections refused by a limit, and discovered peers not dialled (read on the loop).
    public var inboundRefused: UInt64 { loop.preconditionInEventLoop(); return counts.inboundRefused }
    public var discoveryRefused: UInt64 { loop.preconditionInEventLoop(); return counts.discoveryRefused }
    /// TLS handshakes or sessions that failed (read on the loop).
    public var tlsFailures: UInt64 { loop.preconditionInEventLoop(); return counts.tlsFailures }
    /// Key proofs answered, verified, failed and dropped (read on the loop).
    public var keyProofs: KeyProofStats { loop.preconditionInEventLoop(); return counts.keyProofs }
    private let service: RouterService
    private let onData: @Sendable (consuming DataPacket, NeighbourId) -> Void
    private var loop: any EventLoop { service.loop }
    /// Set by `start`, read by `shutdown` and `isListening` (any thread).
    private let listener = Mutex<(any Channel)?>(nil)
    /// The QUIC socket, when QUIC is on (set by `start`; its state is the loop's).
    private let quic = Mutex<QUICEndpoint?>(nil)
    private let redialTask = Mutex<RepeatedTask?>(nil)
    // On the loop only.
    private var outbound: [Endpoint: OutboundPeer] = [:]
    private var inbound: [ObjectIdentifier: InboundPeer] = [:]
    private var counts = Counts()

    struct Counts {
        var inboundRefused: UInt64 = 0
        var discoveryRefused: UInt64 = 0
        var tlsFailures: UInt64 = 0
        var keyProofs = KeyProofStats()
    }

    /// What `KeyProofHandler`s did, over all connections.
    public struct KeyProofStats: Hashable, Sendable {
        /// Challenges of peers that pinned our key, answered.
        public var answered: UInt64 = 0
        /// Pinned peers that proved their key.
        public var verified: UInt64 = 0
        /// Pinned peers that did not (wrong key, bad proof, no answer): closed.
        public var failed: UInt64 = 0
        /// Key proof frames not asked for, or a second challenge on one connection.
        public var dropped: UInt64 = 0
        /// Packets of pinned peers not yet proven, dropped: data, or control beyond 256 held.
        public var discarded: UInt64 = 0
        /// Why the last pinned peer that failed did (for the log's reader and the tests).
        public var lastFailure: String?
        public init() {}
    }

    enum OutboundState {
        case idle
        case connecting
        case connected(any Channel)
    }

    struct OutboundPeer {
        var state = OutboundState.idle
        var type = PeerType.static
        var failures = 0
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

    public init(configuration: Configuration, service: RouterService, logger: Logger = Logger(label: "mycelium.peers"),
                audit: AuditLog? = nil, onData: @escaping @Sendable (consuming DataPacket, NeighbourId) -> Void = { _, _ in }) {
        self.configuration = configuration
        self.identityKey = configuration.identity?.publicKey
        self.logger = logger
        self.audit = audit
        self.service = service
        self.onData = onData
        let now = RouterService.now()
        // Pinned endpoints first: a second entry for the same target is not dialled, so an
        // unpinned duplicate cannot carry the traffic past the pin.
        let dialable = configuration.peers.filter { Self.canDial($0.proto, configuration) }
        for peer in dialable.filter({ $0.key != nil }) + dialable.filter({ $0.key == nil }) {
            if let kept = outbound.keys.first(where: { Self.sameTarget($0, peer, configuration) }) {
                if kept != peer { logger.warning("not dialling \(peer): it reaches the same peer as \(kept)") }
                continue
            }
            outbound[peer] = OutboundPeer(discovered: now)
        }
        for pinned in outbound.keys where pinned.key != nil {
            for other in outbound.keys where other.key == nil && other.host == pinned.host && other.scopeId == pinned.scopeId {
                logger.warning("\(other) is not pinned, so the router may use it instead of the pinned \(pinned)")
            }
        }
    }

    /// Whether two endpoints dial the same thing: one host and port over one transport (in a
    /// private network `tcp://` and `tls://` are both TLS), whatever key they pin.
    static func sameTarget(_ a: Endpoint, _ b: Endpoint, _ configuration: Configuration) -> Bool {
        guard a.host == b.host, a.port == b.port, a.scopeId == b.scopeId else { return false }
        if a.proto == b.proto { return true }
        return configuration.privateNetwork != nil && a.proto != .quic && b.proto != .quic
    }

    /// Whether peers of this transport can be dialled: TCP always (upgraded to TLS in a private
    /// network), TLS only in a private network, QUIC unless disabled or private.
    static func canDial(_ proto: Endpoint.Proto, _ configuration: Configuration) -> Bool {
        switch proto {
        case .tcp: true
        case .tls: configuration.privateNetwork != nil
        case .quic: configuration.quicEnabled
        }
    }

    /// Binds the listener on `[::]:port` (dual stack) and starts dialling.
    public func start() async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(Self.userTimeout, value: PeerTuning.tcpUserTimeoutMs)
            .childChannelOption(.writeBufferWaterMark, value: Self.waterMark)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    self.loop.preconditionInEventLoop()  // child channels share the listener's (the datapath's) loop
                    guard let remote = channel.remoteAddress,
                          let endpoint = Self.endpoint(of: remote)?.with(proto: self.configuration.privateNetwork == nil ? .tcp : .tls) else {
                        throw Refused(description: "no remote address")
                    }
                    if let refusal = self.inboundRefusal(from: endpoint) {
                        self.counts.inboundRefused += 1
                        self.audit?.record("inbound-refused", "refused an inbound peer connection: \(refusal)",
                                           metadata: ["peer": "\(endpoint.socketAddress)"])
                        throw Refused(description: refusal)
                    }
                    try self.installPipeline(on: channel, role: .server, dialled: nil)
                    self.inbound[ObjectIdentifier(channel)] = InboundPeer(endpoint: endpoint, channel: channel, connected: RouterService.now())
                    channel.closeFuture.whenComplete { _ in
                        self.loop.preconditionInEventLoop()
                        self.inbound[ObjectIdentifier(channel)] = nil
                    }
                }
            }
            .bind(host: "::", port: Int(configuration.listenPort)).get()
        if let mark = configuration.firewallMark {
            try await channel.setOption(.socketOption(.init(rawValue: SocketMark.optionName)), value: Int(mark)).get()
        }
        listener.withLock { $0 = channel }
        if configuration.quicEnabled, let port = configuration.quicListenPort {
            do {
                let endpoint = try await QUICEndpoint.bind(
                    host: "::", port: Int(port), on: loop, subjectAltName: configuration.certificateName,
                    socketMark: configuration.firewallMark.map { (SocketMark.optionName, Int($0)) },
                    // From the node key: the same tokens after a restart, so peers' connections
                    // of before it are reset at their next packet.
                    resetSecret: configuration.identity?.derivedKey(context: "mycelium-swift 2026-12-07 QUIC stateless reset v1")).get()
                try await loop.submit { [self] in
                    endpoint.maxPendingHandshakes = PeerTuning.maxPendingQUICHandshakes
                    endpoint.onAccept = { [self] connection in accept(connection, on: endpoint) }
                }.get()
                quic.withLock { $0 = endpoint }
            } catch {
                try? await channel.close().get()
                throw QUICListenFailure(port: port, error: error)
            }
        }
        let task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(configuration.redialIntervalMs)) { [self] _ in
            dialIdlePeers()
        }
        redialTask.withLock { $0 = task }
        return channel.localAddress!
    }

    /// The QUIC socket could not be bound (the TCP listener is closed again).
    public struct QUICListenFailure: Error, CustomStringConvertible {
        public let port: UInt16
        public let error: any Error
        public var description: String { "\(error)" }
    }

    /// The QUIC socket's drop and timeout counters (zero without QUIC; read on the loop).
    public var quicCounters: QUICEndpoint.Counters {
        loop.preconditionInEventLoop()
        return quic.withLock { $0 }?.counters ?? QUICEndpoint.Counters()
    }

    /// The UDP port QUIC listens on, if QUIC is on.
    public var quicPort: Int? { quic.withLock { $0?.port } }

    /// A QUIC connection a peer started (it has sent its first Initial): refused as a TCP
    /// connection would be, else given a peer pipeline.
    private func accept(_ connection: QUICConnection, on endpoint: QUICEndpoint) {
        loop.preconditionInEventLoop()
        guard let peer = Self.endpoint(of: connection.remote)?.with(proto: .quic) else {
            connection.close()
            return
        }
        if let refusal = inboundRefusal(from: peer) {
            counts.inboundRefused += 1
            audit?.record("inbound-refused", "refused an inbound peer connection: \(refusal)",
                          metadata: ["peer": "\(peer)"])
            connection.close()
            return
        }
        let channel = QUICPeerChannel(connection: connection, localAddress: endpoint.localAddress)
        do {
            try installPipeline(on: channel, role: .server, dialled: nil)
        } catch {
            connection.close()
            return
        }
        inbound[ObjectIdentifier(channel)] = InboundPeer(endpoint: peer, channel: channel, connected: RouterService.now())
        channel.closeFuture.whenComplete { _ in
            self.loop.preconditionInEventLoop()
            self.inbound[ObjectIdentifier(channel)] = nil
        }
    }

    static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: PeerTuning.outboxLowWater, high: PeerTuning.outboxHighWater)

    /// Why a new inbound connection from `endpoint` would break a limit, if it would (on the loop).
    private func inboundRefusal(from endpoint: Endpoint) -> String? {
        loop.preconditionInEventLoop()
        if inbound.count >= PeerTuning.maxInbound { return "\(PeerTuning.maxInbound) inbound peers already" }
        if inbound.values.lazy.filter({ $0.endpoint.host == endpoint.host }).count >= PeerTuning.maxInboundPerAddress {
            return "\(PeerTuning.maxInboundPerAddress) connections from this address already"
        }
        if configuration.privateNetwork != nil,
           inbound.values.lazy.filter({ !Self.isEstablished($0.channel) }).count >= PeerTuning.maxPendingHandshakes {
            return "\(PeerTuning.maxPendingHandshakes) TLS handshakes in progress already"
        }
        return nil
    }

    /// Closes the listener and every connection.
    public func shutdown() async {
        redialTask.withLock { $0?.cancel(); $0 = nil }
        let bound = listener.withLock { $0 }
        try? await bound?.close().get()
        let endpoint = quic.withLock { $0 }
        try? await endpoint?.close().get()
        let channels: [any Channel] = (try? await loop.submit { [self] in
            outbound.values.compactMap { if case let .connected(c) = $0.state { return c }; return nil } + inbound.values.map(\.channel)
        }.get()) ?? []
        for channel in channels { try? await channel.close().get() }
    }

    /// Whether the peer listener is bound.
    public var isListening: Bool { listener.withLock { $0?.isActive } ?? false }

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
                    state = Self.isEstablished(channel) ? .alive : .connecting
                    let c = Self.counters(of: channel)
                    tx += c.bytesOut
                    rx += c.bytesIn
                }
                return PeerInfo(endpoint: endpoint, type: peer.type, state: state, txBytes: tx, rxBytes: rx,
                                discovered: peer.discovered, lastConnected: peer.lastConnected)
            }
            let accepted = inbound.values.map { peer in
                let c = Self.counters(of: peer.channel)
                return PeerInfo(endpoint: peer.endpoint, type: .inbound, state: Self.isEstablished(peer.channel) ? .alive : .connecting, txBytes: c.bytesOut, rxBytes: c.bytesIn,
                                discovered: peer.connected, lastConnected: peer.connected)
            }
            return (configured + accepted).sorted { $0.endpoint.description < $1.endpoint.description }
        }.get()) ?? []
    }

    /// Adds a peer and dials it at once (then every redial interval while it is not connected).
    public func add(_ endpoint: Endpoint) async throws(AddError) {
        guard Self.canDial(endpoint.proto, configuration) else {
            throw .unsupportedProtocol(endpoint.proto)
        }
        if endpoint.proto == .quic, case .name = endpoint.host { throw .needsAddress }
        if let key = endpoint.key, key == identityKey { throw .ownKey }
        let added = (try? await loop.submit { [self] () -> Bool in
            // One peer per address: a pinned key does not make it another peer.
            guard !outbound.keys.contains(where: { Self.sameTarget($0, endpoint, configuration) }),
                  !inbound.values.contains(where: { $0.endpoint == endpoint.address }) else { return false }
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
            // Without a key, the endpoint names the peer at that address, pinned or not.
            let configured = outbound[endpoint] != nil ? endpoint
                : outbound.keys.first { endpoint.key == nil && $0.address == endpoint }
            if let configured, let peer = outbound.removeValue(forKey: configured) {
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

    /// A peer found on the LAN (spec §6): dialled unless a peer with the same address and
    /// transport is already known (typically the inbound connection it made to us).
    public func discovered(_ endpoint: Endpoint) {
        loop.execute { [self] in
            let known = outbound.keys.contains { $0.host == endpoint.host && $0.scopeId == endpoint.scopeId }
                || inbound.values.contains { $0.endpoint.host == endpoint.host && $0.endpoint.scopeId == endpoint.scopeId }
            guard !known else { return }
            // Beacons are unauthenticated: a flood of them must not make us dial without end.
            let discovered = outbound.values.lazy.filter { $0.type == .linkLocalDiscovery }.count
            guard discovered < PeerTuning.maxDiscoveredPeers, discoveryDials.take(now: RouterService.now().milliseconds) else {
                counts.discoveryRefused += 1
                audit?.record("discovery-limit", "not dialling a peer found on the LAN: discovery limit reached",
                              metadata: ["endpoint": "\(endpoint)", "discoveredPeers": "\(discovered)"])
                return
            }
            logger.info("peer discovered on the LAN", metadata: ["endpoint": "\(endpoint)"])
            outbound[endpoint] = OutboundPeer(type: .linkLocalDiscovery, discovered: RouterService.now())
            dial(endpoint)
        }
    }

    /// Peers found or lost through DNS (`PeerDNSDiscovery`): new endpoints are dialled (and
    /// re-dialled like static peers while DNS lists them) unless a peer with that endpoint is
    /// already configured; removed ones are forgotten and their connection closed.
    public func dnsChanged(added: [Endpoint], removed: [Endpoint]) {
        loop.execute { [self] in
            for endpoint in removed {
                guard let peer = outbound[endpoint], peer.type == .dnsDiscovery else { continue }
                outbound[endpoint] = nil
                if case let .connected(channel) = peer.state { channel.close(promise: nil) }
                logger.info("forgetting peer no longer in DNS", metadata: ["endpoint": "\(endpoint)"])
            }
            for endpoint in added where !outbound.keys.contains(where: { Self.sameTarget($0, endpoint, configuration) }) {
                guard Self.canDial(endpoint.proto, configuration) else { continue }
                logger.info("peer found through DNS", metadata: ["endpoint": "\(endpoint)"])
                outbound[endpoint] = OutboundPeer(type: .dnsDiscovery, discovered: RouterService.now())
                dial(endpoint)
            }
        }
    }

    private static func counters(of channel: any Channel) -> PeerCounters {
        (try? channel.pipeline.syncOperations.handler(type: PacketFramingHandler.self).counters) ?? PeerCounters()
    }

    /// The connection is a neighbour of the router (after the TLS handshake in a private network).
    private static func isEstablished(_ channel: any Channel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: PeerHandler.self).neighbour) != nil
    }

    // MARK: internals (on the loop)

    /// `dialled`: the endpoint of a dialled peer, whose pinned key (if any) it must prove it
    /// holds before the router sees it.
    private func installPipeline(on channel: any Channel, role: TLSPSKHandler.Role, dialled: Endpoint?) throws {
        loop.preconditionInEventLoop()
        if let network = configuration.privateNetwork {
            try channel.pipeline.syncOperations.addHandler(TLSPSKHandler(context: network, role: role, logger: logger, audit: audit) { [self] in
                loop.preconditionInEventLoop()
                counts.tlsFailures += 1
            })
        }
        let audit = self.audit
        let remote = dialled?.socketAddress ?? channel.remoteAddress.flatMap(Self.endpoint(of:))?.socketAddress ?? "unknown"
        let pinned = dialled?.key
        let logger = self.logger
        // Only accepted connections answer challenges, only dialled ones pin.
        let keyProof = KeyProofHandler(identity: role == .server ? configuration.identity : nil, identityKey: identityKey, pinned: pinned,
                                       timeout: .milliseconds(configuration.keyProofTimeoutMs)) { [self] event in
            loop.preconditionInEventLoop()
            switch event {
            case .answered: counts.keyProofs.answered += 1
            case .verified:
                counts.keyProofs.verified += 1
                logger.info("peer proved its pinned key", metadata: ["peer": "\(remote)"])
            case let .failed(why):
                counts.keyProofs.failed += 1
                counts.keyProofs.lastFailure = why
                // Every attempt (one per redial interval): it may be someone else at that address.
                logger.warning("closed a peer that did not prove its pinned key: \(why)",
                               metadata: ["peer": "\(remote)", "key": "\(pinned?.hex ?? "")"])
            case .discarded:
                counts.keyProofs.discarded += 1
            case .dropped:
                counts.keyProofs.dropped += 1
            case let .misbehaved(why):
                audit?.record("bad-frames", "closed a peer: \(why)", metadata: ["peer": "\(remote)"])
            }
        }
        try channel.pipeline.syncOperations.addHandlers([
            PacketFramingHandler { kind, why in audit?.record(kind, "closed a peer: \(why)", metadata: ["peer": "\(remote)"]) },
            keyProof,
            PeerHandler(service: service, onData: onData),
        ])
    }

    private func dialIdlePeers() {
        loop.preconditionInEventLoop()
        for (endpoint, peer) in outbound.sorted(by: { $0.key.description < $1.key.description }) {
            guard case .idle = peer.state else { continue }
            dial(endpoint)
        }
    }

    private func dial(_ endpoint: Endpoint) {
        loop.preconditionInEventLoop()
        outbound[endpoint]?.state = .connecting
        if endpoint.proto == .quic {
            dialQUIC(endpoint)
            return
        }
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(Self.userTimeout, value: PeerTuning.tcpUserTimeoutMs)
            .channelOption(.writeBufferWaterMark, value: Self.waterMark)
            .connectTimeout(.seconds(5))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.installPipeline(on: channel, role: .client, dialled: endpoint) }
            }
        if let mark = configuration.firewallMark {
            bootstrap = bootstrap.channelOption(.socketOption(.init(rawValue: SocketMark.optionName)), value: Int(mark))
        }
        let connecting: EventLoopFuture<any Channel>
        switch endpoint.host {
        case let .ip(.v6(address)) where endpoint.scopeId != 0:
            // A link-local peer: NIO's host parsing knows no zones, so the address is built here.
            connecting = bootstrap.connect(to: Self.socketAddress(address, port: endpoint.port, scope: endpoint.scopeId))
        case let .ip(ip):
            connecting = bootstrap.connect(host: ip.description, port: Int(endpoint.port))
        case let .name(name):
            connecting = bootstrap.connect(host: name, port: Int(endpoint.port))
        }
        connecting.whenComplete { [self] result in
            loop.preconditionInEventLoop()  // the bootstrap's group is the loop
            switch result {
            case let .success(channel):
                connected(endpoint, channel)
            case let .failure(error):
                outbound[endpoint]?.state = .idle
                failedAttempt(endpoint, reason: "\(error)")
            }
        }
    }

    /// A dialled connection is up (TCP connected, or a QUIC handshake started): tracked until
    /// it closes, then dialled again by the redial timer.
    private func connected(_ endpoint: Endpoint, _ channel: any Channel) {
        loop.preconditionInEventLoop()
        guard outbound[endpoint] != nil, case .connecting = outbound[endpoint]!.state else {
            channel.close(promise: nil)  // removed (or removed and added again) meanwhile
            return
        }
        outbound[endpoint]?.state = .connected(channel)
        outbound[endpoint]?.lastConnected = RouterService.now()
        // Held here: the pipeline no longer has it once the channel has closed.
        let framing = NIOLoopBound(try? channel.pipeline.syncOperations.handler(type: PacketFramingHandler.self),
                                   eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { _ in
            self.loop.preconditionInEventLoop()
            let c = framing.value?.counters ?? PeerCounters()
            if c.packetsIn > 0 { self.outbound[endpoint]?.failures = 0 }
            self.outbound[endpoint]?.closedTx += c.bytesOut
            self.outbound[endpoint]?.closedRx += c.bytesIn
            self.outbound[endpoint]?.state = .idle
            // A connection that never carried a packet (say, a TLS handshake refused) failed.
            if c.packetsIn == 0 { self.failedAttempt(endpoint, reason: "closed before any packet") }
        }
    }

    /// Dials a `quic://` peer from the QUIC socket. Its handshake (10 s at most) and stream
    /// follow on the loop; a failure closes the channel like a refused TCP connection.
    private func dialQUIC(_ endpoint: Endpoint) {
        guard let socket = quic.withLock({ $0 }) else {
            outbound[endpoint]?.state = .idle
            return
        }
        let address: SocketAddress
        switch endpoint.host {
        case let .ip(.v6(v6)):
            address = Self.socketAddress(v6, port: endpoint.port, scope: endpoint.scopeId)
        case let .ip(.v4(v4)):
            // The socket is dual-stack ([::]): an IPv4 peer is reached at its v4-mapped address.
            guard let mapped = try? SocketAddress(ipAddress: "::ffff:\(v4)", port: Int(endpoint.port)) else {
                outbound[endpoint]?.state = .idle
                return
            }
            address = mapped
        case .name:
            // Resolving would block the loop; DNS names are for tcp:// peers and --peer-dns.
            outbound[endpoint]?.state = .idle
            failedAttempt(endpoint, reason: "quic:// takes an IP address, not a name")
            return
        }
        do {
            let connection = try socket.connect(to: address)
            let channel = QUICPeerChannel(connection: connection, localAddress: socket.localAddress)
            do {
                try installPipeline(on: channel, role: .client, dialled: endpoint)
            } catch {
                connection.close()
                throw error
            }
            connected(endpoint, channel)
        } catch {
            outbound[endpoint]?.state = .idle
            failedAttempt(endpoint, reason: "\(error)")
        }
    }

    /// An IPv6 socket address with its zone (scope id), which NIO's host parsing cannot express.
    static func socketAddress(_ address: IPv6Address, port: UInt16, scope: UInt32) -> SocketAddress {
        var raw = sockaddr_in6()
        raw.sin6_family = sa_family_t(AF_INET6)
        raw.sin6_port = port.bigEndian
        raw.sin6_scope_id = scope
        withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: address.bytes) }
        return SocketAddress(raw, host: address.description)
    }

    /// Counts a failed attempt; a discovered peer is forgotten after too many in a row.
    private func failedAttempt(_ endpoint: Endpoint, reason: String) {
        loop.preconditionInEventLoop()
        guard let peer = outbound[endpoint], peer.type == .linkLocalDiscovery else { return }
        outbound[endpoint]?.failures += 1
        if peer.failures + 1 >= configuration.discoveredPeerAttempts {
            outbound[endpoint] = nil
            logger.info("forgetting discovered peer", metadata: ["endpoint": "\(endpoint)", "reason": "\(reason)"])
        }
    }

    static let userTimeout = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketMark.tcpUserTimeoutOptionName)

    static func endpoint(of address: SocketAddress) -> Endpoint? {
        guard let ip = address.ipAddress.flatMap(IPAddress.init), let port = address.port, port > 0 else { return nil }
        var scope: UInt32 = 0
        if case let .v6(v6) = address { scope = v6.address.sin6_scope_id }
        return Endpoint(proto: .tcp, host: .ip(ip), port: UInt16(port), scopeId: scope)
    }
}

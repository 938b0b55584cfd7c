public import Logging
public import MyceliumCore
public import MyceliumCrypto
public import MyceliumDatapath
import MyceliumRouting
import MyceliumSystem
import NIOCore
import NIOPosix
import Synchronization

/// A whole Mycelium node: identity, TUN, router, peers and datapath, wired together.
///
/// `start()` installs what the node needs on the host (TUN device and its address, the fwmark
/// rule) and `stop()` removes it again; a policy rule left by a crashed predecessor is replaced,
/// never duplicated.
///
/// Sendable: the API reads the parts `start()` publishes through `published` (a `Mutex`); the
/// TUN, netlink socket and reader sit behind `owned`; the rest is immutable.
public final class Node: Sendable {
    public struct Configuration: Sendable {
        public var peers: [Endpoint] = []
        public var tcpListenPort: UInt16 = 9651
        /// UDP port for QUIC peers (spec §3.6); nil: no QUIC (`--disable-quic`). Ignored in a
        /// private network, which has no QUIC (as Rust).
        public var quicListenPort: UInt16? = 9651
        public var tunName = "mycelium"
        public var noTun = false
        /// TUN offloads (virtio header, TSO/USO, GRO on write) when the kernel accepts them.
        public var tunOffload = true
        /// Sessions with forward secrecy and counter-based replay windows between our nodes
        /// (docs/sessions.md); off = the static scheme only, as Rust.
        public var sessions = true
        /// Data only inside sessions: refuse and never send the static scheme (our nodes only).
        public var requireSessions = false
        public var firewallMark: UInt32?
        /// A private network: peers only over TLS 1.3 with this network's PSK (spec §3.5).
        public var privateNetwork: PrivateNetwork?
        public var peerDiscovery = true
        public var peerDiscoveryPort: UInt16 = 9650
        public var peerDiscoveryInterfaces: [String] = []
        /// Names whose SRV (or A/AAAA) records list peers (`--peer-dns`).
        public var peerDNS: [String] = []
        /// Who may send messages on which topic (`--topic-config`; spec §7.4).
        public var topics = TopicConfig()
        /// Where the SOCKS5 relay listens once connected (spec §13: 1080; tests use 0).
        public var proxyListenPort = SOCKSProxy.port

        public init() {}
    }

    /// Why the node could not start, naming the option involved.
    public struct StartFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// TUN MTU (spec §12).
    public static let tunMTU: UInt32 = 1400
    /// Routing table holding `unreachable 400::/7` for marked traffic (see `installFirewallMark`).
    public static let markTable: UInt32 = 4243
    public static let markRulePriority: UInt32 = 1000

    public let identity: NodeIdentity
    public let routerId: RouterId
    public let configuration: Configuration
    /// Unix seconds at which the node was created (the API's `nodeStartTime`).
    public let startTime = Node.unixNow()
    private let logger: Logger
    /// The datapath's loop (peers, TUN, packets, messages) and the router's: two threads.
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    private let loops: (datapath: any EventLoop, router: any EventLoop)

    /// What the API reads while `start()`/`stop()` change it: behind one lock.
    private struct Published {
        var service: RouterService?
        var datapath: Datapath?
        var peers: PeerManager?
        var discovery: LANDiscovery?
        var dnsDiscovery: PeerDNSDiscovery?
        var proxy: SOCKSProxy?
        var audit: AuditLog?
        var listenPort: Int?
    }

    /// What only `start()` and `stop()` touch (not Sendable); a lock all the same, so a stop
    /// racing a start cannot tear it.
    private struct Owned {
        var tun: TunDevice?
        var netlink: Netlink?
        /// Reads the TUN on the loop (`TunReadHandler`).
        var tunChannel: (any Channel)?
    }

    private let published = Mutex(Published())
    private let owned = Mutex(Owned())
    private let tunReady = Atomic<Bool>(false)
    /// Set when `stop()` begins: the TUN channel closing then is expected.
    private let stopping = Atomic<Bool>(false)

    public var service: RouterService? { published.withLock { $0.service } }
    public var datapath: Datapath? { published.withLock { $0.datapath } }
    public var peers: PeerManager? { published.withLock { $0.peers } }
    public var discovery: LANDiscovery? { published.withLock { $0.discovery } }
    public var dnsDiscovery: PeerDNSDiscovery? { published.withLock { $0.dnsDiscovery } }
    /// The SOCKS5 helper (spec §13); nil before start.
    public var proxy: SOCKSProxy? { published.withLock { $0.proxy } }
    /// Rate-limited audit lines for refused peers, dropped lies and limits hit.
    public var audit: AuditLog? { published.withLock { $0.audit } }
    /// The port the peer listener is bound to (useful with `tcpListenPort` 0).
    public var listenPort: Int? { published.withLock { $0.listenPort } }

    /// The TUN device is up and addressed (false with `--no-tun` or before start).
    public var isTunReady: Bool { tunReady.load(ordering: .acquiring) }

    public init(identity: NodeIdentity, configuration: Configuration, logger: Logger) {
        self.identity = identity
        self.routerId = identity.makeRouterId()
        self.configuration = configuration
        self.logger = logger
        let all = Array(group.makeIterator())
        loops = (all[0], all[1])
    }

    public func start() async throws {
        let loop = loops.datapath
        if let own = configuration.peers.first(where: { $0.key == identity.publicKey }) {
            // This node answers for its own key: a peer relaying our own challenge back would pass.
            throw StartFailure(description: "--peers: \(own) pins this node's own key")
        }
        if !configuration.noTun || configuration.firewallMark != nil {
            try owned.withLock { $0.netlink = try Netlink() }
        }
        if !configuration.noTun {
            let tun = try TunDevice(name: configuration.tunName, offload: configuration.tunOffload)
            let address = identity.address
            // Prefix length 7, as Rust: the kernel's prefix route sends all of 400::/7 to the TUN.
            do throws(SystemError) {
                try owned.withLock { (o: inout Owned) throws(SystemError) in
                    let netlink = o.netlink!
                    try netlink.setLink(tun.name, up: true, mtu: Self.tunMTU)
                    try netlink.addAddress(address, prefixLength: 7, interface: try netlink.interfaceIndex(tun.name))
                }
            } catch {
                // Docker turns IPv6 off in a container's namespace; the kernel then only says EACCES.
                if (try? TextFile.read("/proc/sys/net/ipv6/conf/\(tun.name)/disable_ipv6"))?.hasPrefix("1") == true {
                    throw SystemError(error.operation, reason: "IPv6 is disabled in this network namespace "
                        + "(net.ipv6.conf.all.disable_ipv6=1); in Docker run with --sysctl net.ipv6.conf.all.disable_ipv6=0",
                        errno: EACCES)
                }
                throw error
            }
            owned.withLock { $0.tun = tun }
            tunReady.store(true, ordering: .releasing)
            logger.info("TUN ready", metadata: ["name": "\(tun.name)", "address": "\(identity.address)/7", "mtu": "\(Self.tunMTU)",
                                                "offloads": "\(configuration.tunOffload ? tun.offloads.description : "off")"])
        }
        let tun = owned.withLock { $0.tun }
        if let mark = configuration.firewallMark { try installFirewallMark(mark) }

        let service = RouterService(routerId: routerId, loop: loop, routerLoop: loops.router)
        let audit = AuditLog(logger: logger) { RouterService.now().milliseconds }
        published.withLock { $0.audit = audit }
        let datapath = Datapath(identity: identity, service: service, tun: tun, audit: audit,
                                sessions: SessionOptions(enabled: configuration.sessions, required: configuration.requireSessions),
                                topics: configuration.topics)
        try await loop.submit {
            datapath.start()
            service.onForwardingTable = { datapath.tableChanged($0) }
            service.beforeFlush = { datapath.flushTun() }
            service.onRouteEvent = { datapath.routeEvent($0) }
            service.onRefused = { id, why in
                audit.record("refused-\(why)", "refused from a peer: \(why.rawValue)",
                             metadata: ["peer": "\(service.remoteDescription(of: id))"])
            }
        }.get()
        let tls = try configuration.privateNetwork.map { network in try TLSPSKContext(network: network) }
        let peers = PeerManager(configuration: .init(listenPort: configuration.tcpListenPort, peers: configuration.peers,
                                                     firewallMark: configuration.firewallMark, privateNetwork: tls,
                                                     quicListenPort: configuration.quicListenPort,
                                                     certificateName: "\(routerId)", identity: identity.secretKey),
                                service: service, logger: logger, audit: audit,
                                onData: { packet, from in datapath.fromPeer(consume packet, neighbour: from) })
        published.withLock { $0.peers = peers }
        let address: SocketAddress
        do { address = try await peers.start() } catch let failure as PeerManager.QUICListenFailure {
            throw StartFailure(description: "cannot listen for QUIC peers on --quic-listen-port \(failure.port): \(failure.error)")
        } catch {
            throw StartFailure(description: "cannot listen for peers on --tcp-listen-port \(configuration.tcpListenPort): \(error)")
        }
        published.withLock { $0.listenPort = address.port }
        // NIO's description ("[IPv6]::/:::9651") is not an address a user can paste.
        let shown = PeerManager.endpoint(of: address)?.socketAddress ?? "\(address)"
        logger.info("listening for peers", metadata: ["address": "\(shown)", "peers": "\(configuration.peers.map(\.description))",
                                                      "transport": "\(tls == nil ? "tcp" : "tls 1.3 psk, network \(configuration.privateNetwork!.name)")",
                                                      "quicPort": "\(peers.quicPort.map(String.init) ?? "off")"])
        if configuration.peerDiscovery {
            var settings = LANDiscovery.Configuration()
            settings.port = configuration.peerDiscoveryPort
            settings.interfaces = configuration.peerDiscoveryInterfaces
            settings.tunName = tun?.name
            settings.tcpListenPort = UInt16(address.port ?? Int(configuration.tcpListenPort))
            settings.privateNetwork = tls != nil
            let discovery = LANDiscovery(configuration: settings, routerId: routerId, peers: peers, loop: loop, logger: logger)
            published.withLock { $0.discovery = discovery }
            do { try await discovery.start() } catch {
                throw StartFailure(description: "cannot listen for LAN discovery on --peer-discovery-port \(settings.port): \(error)")
            }
        }
        if !configuration.peerDNS.isEmpty {
            var settings = PeerDNSDiscovery.Configuration(names: configuration.peerDNS,
                                                          listenPort: UInt16(address.port ?? Int(configuration.tcpListenPort)))
            settings.proto = tls == nil ? .tcp : .tls
            let dns = PeerDNSDiscovery(configuration: settings, peers: peers, logger: logger)
            dns.start()
            published.withLock { $0.dnsDiscovery = dns }
        }
        if let tun {
            let channel = try await TunReading.open(tun: tun, datapath: datapath, loop: loop, logger: logger) { [weak self] in
                self?.tunChannelClosed(tun.name)
            }
            owned.withLock { $0.tunChannel = channel }
        }
        let proxy = SOCKSProxy(loop: loop, listenPort: configuration.proxyListenPort) { [weak self] in
            await self?.selectedRouteOwners() ?? []
        }
        published.withLock {
            $0.service = service
            $0.datapath = datapath
            $0.proxy = proxy
        }
        logger.info("node started", metadata: ["address": "\(identity.address)", "subnet": "\(identity.subnet)",
                                               "publicKey": "\(identity.publicKey)", "routerId": "\(routerId)"])
    }

    /// The TUN channel closed: expected during `stop()`, else the node no longer carries this
    /// host's traffic, which `/readyz` must say.
    private func tunChannelClosed(_ name: String) {
        guard !stopping.load(ordering: .acquiring) else { return }
        tunReady.store(false, ordering: .releasing)
        logger.error("the TUN device is no longer read: this node carries no traffic from this host; restart it",
                     metadata: ["name": "\(name)"])
    }

    /// Packets the kernel dropped in the TUN's queue while the datapath was behind (0 without a
    /// TUN). The queue is the kernel's: the datapath reads from it on its loop.
    func tunQueueDrops() -> UInt64 {
        owned.withLock { o in
            guard let tun = o.tun, let netlink = o.netlink else { return 0 }
            return (try? netlink.transmitDrops(of: tun.name)) ?? 0
        }
    }

    /// Closes peers, closes the TUN channel, removes the TUN and the rule. Safe to call twice.
    public func stop() async {
        stopping.store(true, ordering: .releasing)
        if let channel = owned.withLock({ o -> (any Channel)? in defer { o.tunChannel = nil }; return o.tunChannel }) {
            try? await channel.close()
        }
        let (dns, discovery, peers, proxy) = published.withLock { p in
            defer { p.dnsDiscovery = nil; p.discovery = nil; p.peers = nil; p.proxy = nil }
            return (p.dnsDiscovery, p.discovery, p.peers, p.proxy)
        }
        proxy?.stopProbing()
        proxy?.disconnect()
        dns?.shutdown()
        await discovery?.shutdown()
        await peers?.shutdown()
        if let service = self.service, let datapath = self.datapath {
            try? await service.loop.submit { datapath.stop() }.get()
            // No more hand-overs between the loops; then let both finish what they hold.
            service.shutdown()
            try? await service.routerLoop.submit {}.get()
            try? await service.loop.submit {}.get()
        }
        if let mark = configuration.firewallMark { removeFirewallMark(mark) }
        tunReady.store(false, ordering: .releasing)
        owned.withLock { $0 = Owned() }
        try? await group.shutdownGracefully()
        logger.info("node stopped")
    }

    /// With a firewall mark, the node's own sockets are marked, and marked traffic is kept out of
    /// the overlay: a rule sends it to a table whose `unreachable 400::/7` route stops it from
    /// ever being routed into our TUN (which would loop). Everything else falls through to the
    /// usual tables.
    private func installFirewallMark(_ mark: UInt32) throws {
        let rule = Netlink.MarkRule(mark: mark, table: Self.markTable, priority: Self.markRulePriority)
        try owned.withLock { (o: inout Owned) throws(SystemError) in
            try o.netlink!.replaceRule(rule)
            try o.netlink!.replaceRoute(Subnet.overlay, .unreachable, table: Self.markTable)
        }
        logger.info("firewall mark rule installed", metadata: ["mark": "\(mark)", "table": "\(Self.markTable)"])
    }

    private func removeFirewallMark(_ mark: UInt32) {
        let rule = Netlink.MarkRule(mark: mark, table: Self.markTable, priority: Self.markRulePriority)
        do {
            try owned.withLock { (o: inout Owned) throws(SystemError) in
                try o.netlink?.deleteRule(rule)
                try o.netlink?.deleteRoute(Subnet.overlay, .unreachable, table: Self.markTable)
            }
        } catch {
            logger.warning("could not remove the firewall mark rule", metadata: ["error": "\(error)"])
        }
    }
}

public import Logging
public import MyceliumCore
public import MyceliumCrypto
import MyceliumRouting
import MyceliumSystem
import NIOCore
import NIOPosix

/// A whole Mycelium node: identity, TUN, router, peers and datapath, wired together.
///
/// `start()` installs what the node needs on the host (TUN device and its address, the fwmark
/// rule) and `stop()` removes it again; a policy rule left by a crashed predecessor is replaced,
/// never duplicated.
public final class Node: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var peers: [Endpoint] = []
        public var tcpListenPort: UInt16 = 9651
        public var tunName = "mycelium"
        public var noTun = false
        public var firewallMark: UInt32?
        /// A private network: peers only over TLS 1.3 with this network's PSK (spec §3.5).
        public var privateNetwork: PrivateNetwork?
        public var peerDiscovery = true
        public var peerDiscoveryPort: UInt16 = 9650
        public var peerDiscoveryInterfaces: [String] = []
        /// Names whose SRV (or A/AAAA) records list peers (`--peer-dns`).
        public var peerDNS: [String] = []

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
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var tun: TunDevice?
    private var netlink: Netlink?
    private var reader: TunReader?
    public private(set) var service: RouterService?
    public private(set) var datapath: Datapath?
    public private(set) var peers: PeerManager?
    public private(set) var discovery: LANDiscovery?
    public private(set) var dnsDiscovery: PeerDNSDiscovery?
    /// Rate-limited audit lines for refused peers, dropped lies and limits hit.
    public private(set) var audit: AuditLog?

    /// The port the peer listener is bound to (useful with `tcpListenPort` 0).
    public private(set) var listenPort: Int?

    /// The TUN device is up and addressed (false with `--no-tun` or before start).
    public var isTunReady: Bool { tun != nil }

    public init(identity: NodeIdentity, configuration: Configuration, logger: Logger) {
        self.identity = identity
        self.routerId = identity.makeRouterId()
        self.configuration = configuration
        self.logger = logger
    }

    public func start() async throws {
        let loop = group.next()
        if !configuration.noTun || configuration.firewallMark != nil { netlink = try Netlink() }
        if !configuration.noTun {
            let tun = try TunDevice(name: configuration.tunName)
            try netlink!.setLink(tun.name, up: true, mtu: Self.tunMTU)
            // Prefix length 7, as Rust: the kernel's prefix route sends all of 400::/7 to the TUN.
            do {
                try netlink!.addAddress(identity.address, prefixLength: 7, interface: try netlink!.interfaceIndex(tun.name))
            } catch {
                // Docker turns IPv6 off in a container's namespace; the kernel then only says EACCES.
                if (try? TextFile.read("/proc/sys/net/ipv6/conf/\(tun.name)/disable_ipv6"))?.hasPrefix("1") == true {
                    throw SystemError(error.operation, reason: "IPv6 is disabled in this network namespace "
                        + "(net.ipv6.conf.all.disable_ipv6=1); in Docker run with --sysctl net.ipv6.conf.all.disable_ipv6=0",
                        errno: EACCES)
                }
                throw error
            }
            self.tun = tun
            logger.info("TUN ready", metadata: ["name": "\(tun.name)", "address": "\(identity.address)/7", "mtu": "\(Self.tunMTU)"])
        }
        if let mark = configuration.firewallMark { try installFirewallMark(mark) }

        let service = RouterService(routerId: routerId, loop: loop)
        let audit = AuditLog(logger: logger) { RouterService.now().milliseconds }
        self.audit = audit
        let datapath = Datapath(identity: identity, service: service, tun: tun, audit: audit)
        try await loop.submit {
            service.onForwardingTable = { datapath.tableChanged($0) }
            service.onRouteEvent = { datapath.routeEvent($0) }
            service.onRefused = { id, why in
                audit.record("refused-\(why)", "refused from a peer: \(why.rawValue)",
                             metadata: ["peer": "\(service.remoteDescription(of: id))"])
            }
        }.get()
        let tls = try configuration.privateNetwork.map { network in try TLSPSKContext(network: network) }
        let peers = PeerManager(configuration: .init(listenPort: configuration.tcpListenPort, peers: configuration.peers,
                                                     firewallMark: configuration.firewallMark, privateNetwork: tls),
                                service: service, logger: logger, audit: audit,
                                onData: { packet, from in datapath.fromPeer(packet, neighbour: from) })
        self.peers = peers
        let address: SocketAddress
        do { address = try await peers.start() } catch {
            throw StartFailure(description: "cannot listen for peers on --tcp-listen-port \(configuration.tcpListenPort): \(error)")
        }
        listenPort = address.port
        // NIO's description ("[IPv6]::/:::9651") is not an address a user can paste.
        let shown = PeerManager.endpoint(of: address)?.socketAddress ?? "\(address)"
        logger.info("listening for peers", metadata: ["address": "\(shown)", "peers": "\(configuration.peers.map(\.description))",
                                                      "transport": "\(tls == nil ? "tcp" : "tls 1.3 psk, network \(configuration.privateNetwork!.name)")"])
        if configuration.peerDiscovery {
            var settings = LANDiscovery.Configuration()
            settings.port = configuration.peerDiscoveryPort
            settings.interfaces = configuration.peerDiscoveryInterfaces
            settings.tunName = tun?.name
            settings.tcpListenPort = UInt16(address.port ?? Int(configuration.tcpListenPort))
            settings.privateNetwork = tls != nil
            let discovery = LANDiscovery(configuration: settings, routerId: routerId, peers: peers, loop: loop, logger: logger)
            self.discovery = discovery
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
            dnsDiscovery = dns
        }
        if let tun {
            let reader = TunReader(tun: tun, loop: loop) { batch, dropped in
                if dropped > 0 {
                    datapath.tunBacklogDropped(dropped)
                    audit.record("tun-backlog", "dropped \(dropped) packets read from the TUN: the datapath is behind")
                }
                for packet in batch { datapath.fromTun(packet) }
                service.flush()
            }
            reader.start()
            self.reader = reader
        }
        self.service = service
        self.datapath = datapath
        logger.info("node started", metadata: ["address": "\(identity.address)", "subnet": "\(identity.subnet)",
                                               "publicKey": "\(identity.publicKey)", "routerId": "\(routerId)"])
    }

    /// Closes peers, stops the TUN reader, removes the TUN and the rule. Safe to call twice.
    public func stop() async {
        reader?.stop()
        reader = nil
        dnsDiscovery?.shutdown()
        dnsDiscovery = nil
        await discovery?.shutdown()
        discovery = nil
        await peers?.shutdown()
        peers = nil
        if let mark = configuration.firewallMark { removeFirewallMark(mark) }
        tun = nil
        netlink = nil
        try? await group.shutdownGracefully()
        logger.info("node stopped")
    }

    /// With a firewall mark, the node's own sockets are marked, and marked traffic is kept out of
    /// the overlay: a rule sends it to a table whose `unreachable 400::/7` route stops it from
    /// ever being routed into our TUN (which would loop). Everything else falls through to the
    /// usual tables.
    private func installFirewallMark(_ mark: UInt32) throws {
        let rule = Netlink.MarkRule(mark: mark, table: Self.markTable, priority: Self.markRulePriority)
        try netlink!.replaceRule(rule)
        try netlink!.replaceRoute(Subnet.overlay, .unreachable, table: Self.markTable)
        logger.info("firewall mark rule installed", metadata: ["mark": "\(mark)", "table": "\(Self.markTable)"])
    }

    private func removeFirewallMark(_ mark: UInt32) {
        let rule = Netlink.MarkRule(mark: mark, table: Self.markTable, priority: Self.markRulePriority)
        do {
            try netlink?.deleteRule(rule)
            try netlink?.deleteRoute(Subnet.overlay, .unreachable, table: Self.markTable)
        } catch {
            logger.warning("could not remove the firewall mark rule", metadata: ["error": "\(error)"])
        }
    }
}

public import Logging
public import MyceliumCore
public import MyceliumSystem
import Synchronization

/// Peers found through DNS (`--peer-dns NAME`), the way a headless Service publishes a
/// DaemonSet's pods: SRV `_mycelium._tcp.NAME` (target addresses from the same answer, else
/// looked up), or without SRV the AAAA and A records of NAME with our own listen port.
///
/// Flow: a task sleeps until `PeerDNSPlan.nextDue` → each due name is resolved on the
/// discovery's own thread (the system resolver blocks; /etc/resolv.conf is read on every
/// lookup) → endpoints that are ours (a local address and our port) are left out → the plan's
/// change goes to `PeerManager.dnsChanged`. The plan sits behind a `Mutex`: the task writes it,
/// the metrics read it.
public final class PeerDNSDiscovery: Sendable {
    public struct Configuration: Sendable {
        public var names: [String]
        /// Our TCP listen port: the port of A/AAAA answers, and how we recognise ourselves.
        public var listenPort: UInt16
        /// `.tls` in a private network.
        public var proto: Endpoint.Proto = .tcp
        public var tuning = PeerDNSPlan.Tuning()
        /// A lookup not answered within this long counts as failed; its thread is left to finish
        /// (glibc reads a TCP answer with no timeout of its own).
        public var lookupTimeout: Duration = .seconds(30)

        public init(names: [String], listenPort: UInt16) {
            self.names = names
            self.listenPort = listenPort
        }
    }

    /// A DNS query: name and record type to a raw response (the system resolver by default).
    public typealias Resolve = @Sendable (String, UInt16) -> Result<[UInt8], DNSResolver.Failure>

    /// At most this many SRV targets without addresses in the answer are looked up one by one
    /// per lookup (CoreDNS and dnsmasq put the addresses in the answer).
    static let maxTargetLookups = 64

    private let configuration: Configuration
    private let peers: PeerManager
    private let logger: Logger
    private let resolve: Resolve
    private let localAddresses: @Sendable () -> Set<IPAddress>
    private let plan: Mutex<PeerDNSPlan>
    private let task = Mutex<Task<Void, Never>?>(nil)
    /// Lookups whose thread has not returned (glibc reads a TCP answer with no timeout, so a
    /// server that accepts and never answers holds a thread for ever).
    private let outstanding = Atomic<Int>(0)

    /// No new lookup starts while this many are still out: they are counted as failed instead.
    static let maxOutstandingLookups = 2

    public init(configuration: Configuration, peers: PeerManager, logger: Logger,
                resolve: @escaping Resolve = { DNSResolver.search($0, type: $1) },
                localAddresses: @escaping @Sendable () -> Set<IPAddress> = { NetworkInterfaces.addresses() }) {
        self.configuration = configuration
        self.peers = peers
        self.logger = logger
        self.resolve = resolve
        self.localAddresses = localAddresses
        plan = Mutex(PeerDNSPlan(names: configuration.names, tuning: configuration.tuning, now: RouterService.now().milliseconds))
    }

    public var stats: PeerDNSPlan.Stats { plan.withLock { $0.stats } }
    /// Endpoints DNS gives us now.
    public var endpointCount: Int { plan.withLock { $0.endpoints.count } }

    public func start() {
        task.withLock { $0 = Task { await self.run() } }
        logger.info("peer discovery through DNS on", metadata: ["names": "\(configuration.names)"])
    }

    /// Stops looking up. A lookup in progress finishes on its thread; its answer is dropped.
    public func shutdown() {
        task.withLock { $0?.cancel(); $0 = nil }
    }

    private func run() async {
        while !Task.isCancelled {
            for name in plan.withLock({ $0.due(now: RouterService.now().milliseconds) }) {
                let outcome = await lookupWithDeadline(name)
                guard !Task.isCancelled else { return }
                let change = plan.withLock { $0.record(outcome, for: name, now: RouterService.now().milliseconds) }
                report(name: name, outcome: outcome, change: change)
                if !change.added.isEmpty || !change.removed.isEmpty { peers.dnsChanged(added: change.added, removed: change.removed) }
            }
            let wait = (plan.withLock { $0.nextDue } ?? Int64.max) - RouterService.now().milliseconds
            // Bounded below (no spin) and above (a clock jump cannot park us for long).
            try? await Task.sleep(for: .milliseconds(min(max(wait, 50), 60_000)))
        }
    }

    /// `lookup` on a thread of its own, given up after `lookupTimeout`.
    func lookupWithDeadline(_ name: String) async -> PeerDNSPlan.Outcome {
        guard outstanding.load(ordering: .relaxed) < Self.maxOutstandingLookups else {
            return .failed("\(Self.maxOutstandingLookups) earlier lookups are still stuck in the system resolver")
        }
        outstanding.add(1, ordering: .relaxed)
        let answer = OneAnswer()
        return await withCheckedContinuation { continuation in
            answer.continuation = continuation
            let started = DetachedThread.run { [self] in
                let outcome = lookup(name)
                outstanding.subtract(1, ordering: .relaxed)
                answer.give(outcome)
            }
            guard started else {
                outstanding.subtract(1, ordering: .relaxed)
                answer.give(.failed("cannot start a resolver thread"))
                return
            }
            let timeout = configuration.lookupTimeout
            Task {
                try? await Task.sleep(for: timeout)
                answer.give(.failed("no answer from the system resolver within \(timeout)"))
            }
        }
    }

    private func report(name: String, outcome: PeerDNSPlan.Outcome, change: PeerDNSPlan.Change) {
        switch outcome {
        case let .failed(why):
            logger.warning("peer DNS lookup failed; retrying", metadata: ["name": "\(name)", "error": "\(why)"])
        case .empty:
            logger.debug("peer DNS lookup found no peers", metadata: ["name": "\(name)"])
        case let .records(endpoints, ttl):
            logger.debug("peer DNS lookup", metadata: ["name": "\(name)", "endpoints": "\(endpoints.count)", "ttl": "\(ttl)"])
        case let .partial(endpoints, ttl):
            logger.warning("peer DNS lookup partly failed; keeping what was known", metadata: [
                "name": "\(name)", "endpoints": "\(endpoints.count)", "ttl": "\(ttl)"])
        }
        if change.refused > 0 {
            logger.warning("peer DNS answer holds more endpoints than kept", metadata: [
                "name": "\(name)", "refused": "\(change.refused)", "limit": "\(configuration.tuning.maxEndpointsPerName)"])
        }
    }

    /// One name, resolved (blocking).
    func lookup(_ name: String) -> PeerDNSPlan.Outcome {
        Self.lookup(name, configuration: configuration, resolve: resolve, local: localAddresses())
    }

    /// SRV first; A/AAAA of the name when it has no SRV records. `local` are our addresses.
    /// Any query left unanswered makes the outcome `.partial` (or `.failed` with nothing found),
    /// so a timeout never makes a live peer look gone.
    static func lookup(_ name: String, configuration: Configuration, resolve: Resolve, local: Set<IPAddress>) -> PeerDNSPlan.Outcome {
        var found: [(IPAddress, UInt16)] = []
        var ttl = UInt32.max
        var failure: String?
        switch resolve(PeerDNSRecords.srvName(name), DNSMessage.RecordType.srv.rawValue) {
        case let .success(bytes):
            guard let message = try? DNSMessage(decoding: bytes) else { return .failed("malformed DNS response to the SRV query") }
            let targets = PeerDNSRecords.srvTargets(in: message)
            if targets.isEmpty { return addressFallback(name, configuration: configuration, resolve: resolve, local: local) }
            var lookups = 0
            for target in targets {
                var addresses = PeerDNSRecords.addresses(of: target.target, in: message)
                if addresses.isEmpty {
                    guard lookups < maxTargetLookups else { failure = "more than \(maxTargetLookups) SRV targets without addresses"; continue }
                    lookups += 1
                    let answer = addressRecords(of: target.target, resolve: resolve)
                    addresses = answer.found
                    if let why = answer.failure { failure = "\(target.target): \(why)" }
                }
                for (address, addressTTL) in addresses {
                    found.append((address, target.port))
                    ttl = min(ttl, addressTTL, target.ttl)
                }
            }
        case .failure(.notFound), .failure(.noData):
            return addressFallback(name, configuration: configuration, resolve: resolve, local: local)
        case let .failure(why):
            return .failed("\(why)")
        }
        return outcome(found, ttl: ttl, failure: failure, configuration: configuration, local: local)
    }

    static func addressFallback(_ name: String, configuration: Configuration, resolve: Resolve, local: Set<IPAddress>) -> PeerDNSPlan.Outcome {
        let answer = addressRecords(of: name, resolve: resolve)
        return outcome(answer.found.map { ($0.address, configuration.listenPort) }, ttl: answer.found.map(\.ttl).min() ?? 0,
                       failure: answer.failure, configuration: configuration, local: local)
    }

    /// AAAA and A records of `name`, and why a query was not answered if one was not
    /// (NXDOMAIN and no data are answers).
    static func addressRecords(of name: String, resolve: Resolve) -> (found: [(address: IPAddress, ttl: UInt32)], failure: String?) {
        var out: [(address: IPAddress, ttl: UInt32)] = []
        var failure: String?
        for type in [DNSMessage.RecordType.aaaa, .a] {
            switch resolve(name, type.rawValue) {
            case let .success(bytes):
                guard let message = try? DNSMessage(decoding: bytes) else { failure = "malformed DNS response"; continue }
                // The resolver may have appended a search domain: take the records of the type asked for.
                let owner = message.answers.first?.name ?? name
                out += PeerDNSRecords.addresses(of: owner, in: message).filter { record in
                    switch record.address { case .v6: type == .aaaa; case .v4: type == .a }
                }
            case .failure(.notFound), .failure(.noData):
                break
            case let .failure(why):
                failure = "\(why)"
            }
        }
        return (out, failure)
    }

    static func outcome(_ found: [(IPAddress, UInt16)], ttl: UInt32, failure: String?, configuration: Configuration,
                        local: Set<IPAddress>) -> PeerDNSPlan.Outcome {
        let endpoints = found.filter { !(local.contains($0.0) && $0.1 == configuration.listenPort) }
            .map { Endpoint(proto: configuration.proto, host: .ip($0.0), port: $0.1) }
        if let failure {
            return found.isEmpty ? .failed(failure) : .partial(endpoints, ttlSeconds: ttl)
        }
        return endpoints.isEmpty ? .empty : .records(endpoints, ttlSeconds: ttl)
    }
}

/// The first of a lookup's answer and its timeout resumes the waiting task; the other is dropped.
private final class OneAnswer: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<PeerDNSPlan.Outcome, Never>?, given: Bool)>((nil, false))

    var continuation: CheckedContinuation<PeerDNSPlan.Outcome, Never>? {
        get { state.withLock { $0.continuation } }
        set { state.withLock { $0.continuation = newValue } }
    }

    func give(_ outcome: PeerDNSPlan.Outcome) {
        let waiting = state.withLock { s -> CheckedContinuation<PeerDNSPlan.Outcome, Never>? in
            guard !s.given else { return nil }
            s.given = true
            defer { s.continuation = nil }
            return s.continuation
        }
        waiting?.resume(returning: outcome)
    }
}

public import Logging
public import MyceliumCore
public import MyceliumSystem
import Synchronization

/// Peers found through DNS (`--peer-dns NAME`), the way a headless Service publishes a
/// DaemonSet's pods: SRV `_mycelium._tcp.NAME` (target addresses from the same answer, else
/// looked up), or without SRV the AAAA and A records of NAME with our own listen port.
///
/// Flow: a task sleeps until `PeerDNSPlan.nextDue` → each due name is resolved on a thread of
/// its own with a deadline (the system resolver blocks; /etc/resolv.conf is read on every
/// lookup) → endpoints that are ours (a local address and our port) are left out → the plan's
/// change goes to `PeerManager.dnsChanged`. The plan sits behind a `Mutex`: the task writes it,
/// the metrics read it.
///
/// Bounds against a hostile or broken server: at most `maxEndpointsPerName` SRV targets and
/// `maxAddressesPerTarget` addresses each are taken; at most `maxTargetLookups` targets without
/// addresses in the answer are looked up per round (in turn, remembered for their TTL in a
/// cache of `TargetCache.capacity`); a lookup past its deadline is counted as failed, at most
/// `maxOutstandingLookups` threads may be stuck, and while one is, lookups stay on UDP
/// (truncated answers are taken as partial) so discovery goes on.
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
    /// per round (servers usually put the addresses in the answer; dnsmasq drops those that do
    /// not fit).
    static let maxTargetLookups = 64
    /// Addresses taken per SRV target (a pod has one or two).
    static let maxAddressesPerTarget = 8

    /// Addresses of SRV targets learned by their own lookups, until their TTL runs out.
    struct TargetCache {
        struct Entry {
            var addresses: [(address: IPAddress, ttl: UInt32)]
            var expires: Int64
        }
        static let capacity = 512
        var entries: [String: Entry] = [:]

        mutating func store(_ target: String, _ addresses: [(address: IPAddress, ttl: UInt32)], now: Int64) {
            if entries[target] == nil, entries.count >= Self.capacity {
                // Expired entries go first, else the one that expires soonest.
                let victim = entries.min { $0.value.expires < $1.value.expires }!.key
                entries[victim] = nil
            }
            let ttl = Int64(addresses.map(\.ttl).min() ?? 0)
            entries[target] = Entry(addresses: addresses, expires: now + max(ttl, 5) * 1000)
        }
    }

    /// What a lookup thread needs, without the discovery itself (a stuck thread must not keep
    /// the node's peer manager alive).
    struct Context: Sendable {
        let configuration: Configuration
        let resolve: Resolve
        let localAddresses: @Sendable () -> Set<IPAddress>
        let shared: Shared

        func lookup(_ name: String) -> PeerDNSPlan.Outcome {
            var copy = shared.cache.withLock { $0 }
            let outcome = PeerDNSDiscovery.lookup(name, configuration: configuration, resolve: resolve, local: localAddresses(),
                                                  cache: &copy, now: RouterService.now().milliseconds,
                                                  rotation: shared.rotation.add(1, ordering: .relaxed).newValue)
            shared.cache.withLock { $0 = copy }
            return outcome
        }
    }

    /// A Sendable home for the non-copyable context pieces.
    final class Shared: Sendable {
        let cache = Mutex(TargetCache())
        let rotation = Atomic<Int>(0)
        /// Set while a lookup is stuck past its deadline: lookups then stay on UDP.
        let udpOnly = Atomic<Bool>(false)
        /// Lookups whose thread has not returned (glibc reads a TCP answer with no timeout, so
        /// a server that accepts and never answers holds a thread for ever).
        let outstanding = Atomic<Int>(0)
    }

    private let configuration: Configuration
    private let peers: PeerManager
    private let logger: Logger
    private let resolve: Resolve
    private let localAddresses: @Sendable () -> Set<IPAddress>
    private let shared = Shared()
    private let stopped = Atomic<Bool>(false)
    private let plan: Mutex<PeerDNSPlan>
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// No new lookup starts while this many are still out: they are counted as failed instead.
    static let maxOutstandingLookups = 2

    public init(configuration: Configuration, peers: PeerManager, logger: Logger,
                resolve: Resolve? = nil,
                localAddresses: @escaping @Sendable () -> Set<IPAddress> = { NetworkInterfaces.addresses() }) {
        self.configuration = configuration
        self.peers = peers
        self.logger = logger
        let shared = self.shared
        self.resolve = resolve ?? { name, type in DNSResolver.search(name, type: type, udpOnly: shared.udpOnly.load(ordering: .relaxed)) }
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
        stopped.store(true, ordering: .relaxed)
        task.withLock { $0?.cancel(); $0 = nil }
    }

    private func run() async {
        while !Task.isCancelled {
            for name in plan.withLock({ $0.due(now: RouterService.now().milliseconds) }) {
                let outcome = await lookupWithDeadline(name)
                guard !Task.isCancelled else { return }
                let change = plan.withLock { $0.record(outcome, for: name, now: RouterService.now().milliseconds) }
                report(name: name, outcome: outcome, change: change)
                guard !stopped.load(ordering: .relaxed) else { return }
                if !change.added.isEmpty || !change.removed.isEmpty { peers.dnsChanged(added: change.added, removed: change.removed) }
            }
            let wait = (plan.withLock { $0.nextDue } ?? Int64.max) - RouterService.now().milliseconds
            // Bounded below (no spin) and above (a clock jump cannot park us for long).
            try? await Task.sleep(for: .milliseconds(min(max(wait, 50), 60_000)))
        }
    }

    /// `lookup` on a thread of its own, given up after `lookupTimeout`.
    func lookupWithDeadline(_ name: String) async -> PeerDNSPlan.Outcome {
        guard shared.outstanding.load(ordering: .relaxed) < Self.maxOutstandingLookups else {
            return .failed("\(Self.maxOutstandingLookups) earlier lookups are still stuck in the system resolver")
        }
        shared.outstanding.add(1, ordering: .relaxed)
        let answer = OneAnswer()
        let context = Context(configuration: configuration, resolve: resolve, localAddresses: localAddresses, shared: shared)
        let (shared, logger) = (self.shared, self.logger)
        return await withCheckedContinuation { continuation in
            answer.continuation = continuation
            let started = DetachedThread.run {
                let outcome = context.lookup(name)
                if shared.outstanding.subtract(1, ordering: .relaxed).newValue == 0, shared.udpOnly.exchange(false, ordering: .relaxed) {
                    logger.info("the stuck peer DNS lookups returned; lookups may use TCP again")
                }
                answer.give(outcome)
            }
            guard started else {
                shared.outstanding.subtract(1, ordering: .relaxed)
                answer.give(.failed("cannot start a resolver thread"))
                return
            }
            let timeout = configuration.lookupTimeout
            Task {
                try? await Task.sleep(for: timeout)
                if answer.give(.failed("no answer from the system resolver within \(timeout)")),
                   !shared.udpOnly.exchange(true, ordering: .relaxed) {
                    logger.warning("a peer DNS lookup is stuck (a TCP answer that never comes?); lookups stay on UDP until it returns")
                }
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

    /// One name, resolved (blocking), with a fresh target cache: for tests.
    static func lookup(_ name: String, configuration: Configuration, resolve: Resolve, local: Set<IPAddress>) -> PeerDNSPlan.Outcome {
        var cache = TargetCache()
        return lookup(name, configuration: configuration, resolve: resolve, local: local, cache: &cache, now: 0, rotation: 0)
    }

    /// SRV first; A/AAAA of the name when it has no SRV records. `local` are our addresses.
    /// Any query left unanswered, a truncated answer or a target left for a later round makes the
    /// outcome `.partial` (or `.failed` with nothing found), so none makes a live peer look gone.
    static func lookup(_ name: String, configuration: Configuration, resolve: Resolve, local: Set<IPAddress>,
                       cache: inout TargetCache, now: Int64, rotation: Int) -> PeerDNSPlan.Outcome {
        var found: [(IPAddress, UInt16)] = []
        var ttl = UInt32.max
        var failure: String?
        switch resolve(PeerDNSRecords.srvName(name), DNSMessage.RecordType.srv.rawValue) {
        case let .success(bytes):
            guard let message = try? DNSMessage(decoding: bytes) else { return .failed("malformed DNS response to the SRV query") }
            if message.truncated { failure = "the SRV answer was truncated" }
            var seen: Set<String> = []
            let targets = PeerDNSRecords.srvTargets(in: message).filter { seen.insert("\($0.target) \($0.port)").inserted }
                .prefix(configuration.tuning.maxEndpointsPerName)
            if targets.isEmpty {
                if message.truncated { return .failed("the SRV answer was truncated before its first record") }
                return addressFallback(name, configuration: configuration, resolve: resolve, local: local)
            }
            let glue = targets.map { Array(PeerDNSRecords.addresses(of: $0.target, in: message).prefix(maxAddressesPerTarget)) }
            // Targets without addresses and without fresh cached ones: looked up in turn.
            let missing = targets.indices.filter { glue[$0 - targets.startIndex].isEmpty && (cache.entries[targets[$0].target]?.expires ?? 0) <= now }
            let start = missing.isEmpty ? 0 : rotation % missing.count
            let lookedUp = Set((missing[start...] + missing[..<start]).prefix(maxTargetLookups))
            for (i, target) in zip(targets.indices, targets) {
                var addresses = glue[i - targets.startIndex]
                if addresses.isEmpty {
                    if lookedUp.contains(i) {
                        let answer = addressRecords(of: target.target, resolve: resolve)
                        if let why = answer.failure { failure = "\(target.target): \(why)" } else { cache.store(target.target, answer.found, now: now) }
                        addresses = Array(answer.found.prefix(maxAddressesPerTarget))
                    } else if let cached = cache.entries[target.target] {
                        addresses = cached.addresses  // fresh, or stale until its turn comes
                    } else {
                        failure = "more than \(maxTargetLookups) SRV targets without addresses; the rest in later rounds"
                    }
                }
                for (address, addressTTL) in addresses where found.count < configuration.tuning.maxEndpointsPerName {
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

    /// False if the other one came first.
    @discardableResult
    func give(_ outcome: PeerDNSPlan.Outcome) -> Bool {
        let waiting = state.withLock { s -> CheckedContinuation<PeerDNSPlan.Outcome, Never>?? in
            guard !s.given else { return .none }
            s.given = true
            defer { s.continuation = nil }
            return .some(s.continuation)
        }
        guard let waiting else { return false }
        waiting?.resume(returning: outcome)
        return true
    }
}

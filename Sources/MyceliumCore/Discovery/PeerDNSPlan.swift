/// Peers found through DNS (`--peer-dns NAME`): which names to look up when, and which
/// endpoints to dial or forget after each answer. Pure: the caller resolves and passes `now`.
///
/// Flow per name: due → the caller resolves (SRV `_mycelium._tcp.NAME`, else A/AAAA) and
/// reports an `Outcome` → the endpoints' table changes → the next lookup is scheduled from
/// the answer's TTL (clamped to `Tuning.minRefreshMs...maxRefreshMs`), `emptyRefreshMs` after
/// an empty answer, or with a doubling back-off after a failure. An endpoint is forgotten only
/// after `forgetAfterMisses` answers in a row without it (a failed lookup is not an answer), so
/// one flapping answer does not drop a peer. Each name holds at most `maxEndpointsPerName`.
public struct PeerDNSPlan: Sendable {
    public struct Tuning: Sendable {
        public var minRefreshMs: Int64 = 5_000
        public var maxRefreshMs: Int64 = 300_000
        /// After an answer with no records (the Service has no endpoints yet, say).
        public var emptyRefreshMs: Int64 = 10_000
        public var firstBackoffMs: Int64 = 5_000
        public var maxBackoffMs: Int64 = 60_000
        public var forgetAfterMisses = 2
        public var maxEndpointsPerName = 256

        public init() {}
    }

    /// What a lookup of one name gave.
    public enum Outcome: Equatable, Sendable {
        /// Endpoints (ourselves already left out) and the smallest TTL of the records used.
        case records([Endpoint], ttlSeconds: UInt32)
        /// Some queries were answered and some were not (one SRV target timed out, say): the
        /// endpoints found are taken, but nothing counts as missing.
        case partial([Endpoint], ttlSeconds: UInt32)
        /// The name exists with no usable record, or does not exist (NXDOMAIN): an answer.
        case empty
        /// No answer: timeout, SERVFAIL, no resolver reachable.
        case failed(String)
    }

    /// Endpoints to dial and to forget after an outcome.
    public struct Change: Equatable, Sendable {
        public var added: [Endpoint] = []
        public var removed: [Endpoint] = []
        /// Endpoints beyond `maxEndpointsPerName`, not taken.
        public var refused = 0
    }

    public struct Stats: Equatable, Sendable {
        public var lookups: UInt64 = 0
        public var failures: UInt64 = 0
        public var refused: UInt64 = 0

        public init() {}
    }

    struct NameState {
        var due: Int64
        var failuresInARow = 0
        /// Each endpoint with the number of answers in a row that did not hold it.
        var endpoints: [Endpoint: Int] = [:]
    }

    public let tuning: Tuning
    public let names: [String]
    private var states: [String: NameState]
    public private(set) var stats = Stats()

    public init(names: [String], tuning: Tuning = Tuning(), now: Int64) {
        var unique: [String] = []
        for name in names where !unique.contains(name) { unique.append(name) }
        self.names = unique
        self.tuning = tuning
        states = Dictionary(uniqueKeysWithValues: unique.map { ($0, NameState(due: now)) })
    }

    /// Names whose lookup is due at `now`.
    public func due(now: Int64) -> [String] {
        names.filter { states[$0]!.due <= now }
    }

    /// When the next lookup is due (nil without names).
    public var nextDue: Int64? { states.values.map(\.due).min() }

    /// Every endpoint held now, over all names.
    public var endpoints: Set<Endpoint> { Set(states.values.flatMap(\.endpoints.keys)) }

    /// Takes the outcome of looking `name` up at `now`.
    public mutating func record(_ outcome: Outcome, for name: String, now: Int64) -> Change {
        guard var state = states[name] else { return Change() }
        let before = endpoints
        stats.lookups += 1
        var change = Change()
        switch outcome {
        case .failed:
            stats.failures += 1
            let backoff = tuning.firstBackoffMs << Int64(min(state.failuresInARow, 20))
            state.failuresInARow += 1
            state.due = now + min(backoff, tuning.maxBackoffMs)
            states[name] = state
            return change
        case .empty:
            state.failuresInARow = 0
            state.due = now + tuning.emptyRefreshMs
            age(&state, keeping: [])
        case let .records(found, ttl), let .partial(found, ttl):
            state.failuresInARow = 0
            state.due = now + min(max(Int64(ttl) * 1000, tuning.minRefreshMs), tuning.maxRefreshMs)
            // Age first, so endpoints that left free their places for the new ones.
            let listed = Set(found)
            if case .records = outcome { age(&state, keeping: listed) }
            var seen: Set<Endpoint> = []
            for endpoint in found where seen.insert(endpoint).inserted {
                if state.endpoints[endpoint] == nil, state.endpoints.count >= tuning.maxEndpointsPerName {
                    change.refused += 1
                    continue
                }
                state.endpoints[endpoint] = 0
            }
        }
        stats.refused += UInt64(change.refused)
        states[name] = state
        let after = endpoints
        change.added = after.subtracting(before).sorted { $0.description < $1.description }
        change.removed = before.subtracting(after).sorted { $0.description < $1.description }
        return change
    }

    /// One more miss for every endpoint not in `keeping`; forgotten at `forgetAfterMisses`.
    private func age(_ state: inout NameState, keeping: Set<Endpoint>) {
        for (endpoint, misses) in state.endpoints where !keeping.contains(endpoint) {
            state.endpoints[endpoint] = misses + 1 >= tuning.forgetAfterMisses ? nil : misses + 1
        }
    }
}

/// Turns DNS answers into peer endpoints.
public enum PeerDNSRecords {
    /// The SRV owner name for `name`: `_mycelium._tcp.NAME` (spec of a headless Service's port
    /// named `mycelium`).
    public static func srvName(_ name: String) -> String { "_mycelium._tcp." + name }

    /// SRV targets of the answer section, with their ports and TTLs, lowest priority first.
    public static func srvTargets(in message: DNSMessage) -> [(target: String, port: UInt16, ttl: UInt32)] {
        message.answers.compactMap { record -> (UInt16, String, UInt16, UInt32)? in
            guard case let .srv(priority, _, port, target) = record.data, port != 0, !target.isEmpty else { return nil }
            return (priority, target, port, record.ttl)
        }
        .sorted { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        .map { (target: $0.1, port: $0.2, ttl: $0.3) }
    }

    /// Addresses of `name` in the message (answer and additional sections), following CNAMEs,
    /// with the smallest TTL along the way.
    public static func addresses(of name: String, in message: DNSMessage) -> [(address: IPAddress, ttl: UInt32)] {
        let records = message.answers + message.additional
        var names: [String: UInt32] = [name.lowercased().trimmingDot(): UInt32.max]
        // CNAME chains are short; a bounded walk ignores loops.
        for _ in 0..<8 {
            var grew = false
            for record in records {
                guard case let .cname(target) = record.data, let ttl = names[record.name], names[target] == nil else { continue }
                names[target] = min(ttl, record.ttl)
                grew = true
            }
            if !grew { break }
        }
        var out: [(address: IPAddress, ttl: UInt32)] = []
        for record in records {
            guard let ttl = names[record.name] else { continue }
            switch record.data {
            case let .a(v4): out.append((.v4(v4), min(ttl, record.ttl)))
            case let .aaaa(v6): out.append((.v6(v6), min(ttl, record.ttl)))
            default: break
            }
        }
        return out
    }
}

extension String {
    func trimmingDot() -> String { hasSuffix(".") ? String(dropLast()) : self }
}

extension PeerDNSRecords {
    /// A DNS name we can look up: labels of letters, digits, '-' and '_' (SRV labels), 1 to 63
    /// bytes each, 253 bytes in all; one trailing dot allowed.
    public static func isValidName(_ name: String) -> Bool {
        let bare = name.trimmingDot()
        guard !bare.isEmpty, bare.utf8.count <= 253 else { return false }
        return bare.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F
            }
        }
    }
}

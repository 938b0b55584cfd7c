public import MyceliumCore

/// Who may send on which topic, and where a topic's messages go (spec §7.4).
///
/// A topic with configuration accepts only sources inside its subnets (an empty list: nobody)
/// and, with a forward socket, hands its messages to that Unix socket instead of the inbox.
/// Other topics follow `defaultAccept`. Replies skip the check (they answer what we sent).
public struct TopicConfig: Hashable, Sendable {
    public struct Topic: Hashable, Sendable {
        public var sources: [Subnet]
        public var forwardSocket: String?

        public init(sources: [Subnet] = [], forwardSocket: String? = nil) {
            self.sources = sources
            self.forwardSocket = forwardSocket
        }
    }

    public var defaultAccept: Bool
    public private(set) var topics: [[UInt8]: Topic]

    /// Configured topics at most (each is set through the API or the topic file).
    public static let maxTopics = 1_024
    /// Sources per topic at most.
    public static let maxSources = 1_024

    public init(defaultAccept: Bool = true, topics: [[UInt8]: Topic] = [:]) {
        self.defaultAccept = defaultAccept
        self.topics = topics
    }

    public func allows(_ topic: [UInt8], from source: IPv6Address) -> Bool {
        guard let config = topics[topic] else { return defaultAccept }
        return config.sources.contains { $0.contains(source) }
    }

    public func forwardSocket(of topic: [UInt8]) -> String? { topics[topic]?.forwardSocket }

    /// Configured topics, sorted (the API lists them in a stable order).
    public var names: [[UInt8]] { topics.keys.sorted { $0.lexicographicallyPrecedes($1) } }

    public enum Refusal: Error, Equatable {
        case tooMany
    }

    /// Adds `topic` with no sources (nobody may send) if it is not configured yet.
    public mutating func add(_ topic: [UInt8]) throws(Refusal) {
        guard topics[topic] == nil else { return }
        guard topics.count < Self.maxTopics else { throw .tooMany }
        topics[topic] = Topic()
    }

    public mutating func remove(_ topic: [UInt8]) { topics[topic] = nil }

    /// Adds a source; configures the topic first if needed (as Rust does).
    public mutating func addSource(_ subnet: Subnet, to topic: [UInt8]) throws(Refusal) {
        try add(topic)
        guard !topics[topic]!.sources.contains(subnet) else { return }
        guard topics[topic]!.sources.count < Self.maxSources else { throw .tooMany }
        topics[topic]!.sources.append(subnet)
    }

    public mutating func removeSource(_ subnet: Subnet, from topic: [UInt8]) {
        topics[topic]?.sources.removeAll { $0 == subnet }
    }

    /// Sets the forward socket of a configured topic; does nothing for others (as Rust).
    public mutating func setForwardSocket(_ path: String?, of topic: [UInt8]) {
        guard topics[topic] != nil else { return }
        topics[topic]!.forwardSocket = path
    }

    /// A source as the API and the topic file give it: a subnet, or a bare address (/128, /32).
    public static func parseSource(_ text: String) -> Subnet? {
        if text.contains("/") { return Subnet(text) }
        guard let ip = IPAddress(text) else { return nil }
        switch ip {
        case .v6: return Subnet(address: ip, prefixLength: 128)
        case .v4: return Subnet(address: ip, prefixLength: 32)
        }
    }
}

/// A peer endpoint as users write it: `tcp://1.2.3.4:9651`, `tcp://[2001:db8::1]:9651`,
/// `quic://…`, `tls://…`, and (beyond Rust, which users ask for) host names: `tcp://peer.example:9651`.
/// Also beyond Rust: `?key=<64 hex digits>` pins the peer's public key (as Yggdrasil's
/// `?key=`): the connection is dropped unless the peer proves it holds that key.
public struct Endpoint: Hashable, Sendable {
    public enum Proto: String, Sendable, CaseIterable {
        case tcp, quic, tls
    }

    public enum Host: Hashable, Sendable {
        case ip(IPAddress)
        case name(String)
    }

    public let proto: Proto
    public let host: Host
    public let port: UInt16
    /// Interface index of a link-local IPv6 host (`[fe80::1%2]:9651`), 0 otherwise.
    public let scopeId: UInt32
    /// The peer's public key, when pinned (`?key=`).
    public let key: PublicKey?

    public init(proto: Proto, host: Host, port: UInt16, scopeId: UInt32 = 0, key: PublicKey? = nil) {
        self.proto = proto
        self.host = host
        self.port = port
        self.scopeId = scopeId
        self.key = key
    }

    /// The same endpoint over another transport (a `tcp://` peer dialled with TLS, say).
    public func with(proto: Proto) -> Endpoint {
        Endpoint(proto: proto, host: host, port: port, scopeId: scopeId, key: key)
    }

    /// The same endpoint with no pinned key: where it is, not who must answer there.
    public var address: Endpoint {
        Endpoint(proto: proto, host: host, port: port, scopeId: scopeId)
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case missingScheme(String)
        case unsupportedScheme(String)
        case badHost(String)
        case badPort(String)
        case badKey(String)

        public var description: String {
            switch self {
            case let .missingScheme(s): "endpoint '\(s)' has no scheme; expected tcp://HOST:PORT, quic://… or tls://…"
            case let .unsupportedScheme(s): "endpoint scheme '\(s)' is not supported; use tcp, quic or tls"
            case let .badHost(s): "endpoint host '\(s)' is not an IP address or host name"
            case let .badPort(s): "endpoint port '\(s)' is not a number from 1 to 65535"
            case let .badKey(s): "endpoint option '\(s)' is not key=<64 hex digits> (the peer's public key)"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .missingScheme(text) }
        let scheme = parts[0].lowercased()
        guard let proto = Proto(rawValue: scheme) else { throw .unsupportedScheme(scheme) }
        var rest = parts[1]
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            rest = rest[..<question]
            guard query.hasPrefix("key="), let key = PublicKey(hex: query.dropFirst(4)) else { throw .badKey(String(query)) }
            self.key = key
        } else {
            self.key = nil
        }
        let hostText: Substring, portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .badHost(String(rest)) }
            hostText = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw .badPort(String(after)) }
            portText = after.dropFirst()
            // A numeric zone, as Rust's SocketAddr accepts: [fe80::1%2]:9651.
            var addressText = hostText, scope: UInt32 = 0
            if let percent = hostText.firstIndex(of: "%") {
                addressText = hostText[..<percent]
                let zone = hostText[hostText.index(after: percent)...]
                guard !zone.isEmpty, zone.utf8.allSatisfy({ (48...57).contains($0) }), let n = UInt32(zone) else {
                    throw .badHost(String(hostText))
                }
                scope = n
            }
            guard let v6 = IPv6Address(String(addressText)) else { throw .badHost(String(hostText)) }
            self.host = .ip(.v6(v6))
            self.scopeId = scope
        } else {
            guard let colon = rest.lastIndex(of: ":") else { throw .badPort(String(rest)) }
            hostText = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
            self.scopeId = 0
            if let v4 = IPv4Address(String(hostText)) {
                self.host = .ip(.v4(v4))
            } else if Endpoint.isHostName(hostText) {
                self.host = .name(hostText.lowercased())
            } else {
                throw .badHost(String(hostText))
            }
        }
        guard portText.utf8.count <= 5, portText.utf8.allSatisfy({ (48...57).contains($0) }),
              let port = UInt16(portText), port > 0 else { throw .badPort(String(portText)) }
        self.proto = proto
        self.port = port
    }

    /// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
    static func isHostName(_ s: Substring) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { c in (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 45 }
        } && !s.split(separator: ".").last!.utf8.allSatisfy { (48...57).contains($0) }
    }
}

extension Endpoint: CustomStringConvertible {
    public var description: String {
        guard let key else { return "\(proto.rawValue)://\(socketAddress)" }
        return "\(proto.rawValue)://\(socketAddress)?key=\(key.hex)"
    }

    /// Host and port as a socket address string (`1.2.3.4:9651`, `[::1]:9651`).
    public var socketAddress: String {
        switch host {
        case let .ip(.v6(a)): scopeId == 0 ? "[\(a)]:\(port)" : "[\(a)%\(scopeId)]:\(port)"
        case let .ip(.v4(a)): "\(a):\(port)"
        case let .name(n): "\(n):\(port)"
        }
    }
}

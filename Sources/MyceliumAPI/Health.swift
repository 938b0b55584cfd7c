public import MyceliumNode

/// `/healthz` and `/readyz`: what the Kubernetes probes ask.
///
/// Health: the process answers and a task runs through the datapath's event loop and then the
/// router's within a second (a stuck loop stalls every peer, so restarting is the cure). Readiness: the TUN is configured (or
/// `--no-tun`), the peer listener is bound, and at least one peer is alive when peers are
/// configured or DNS (`--peer-dns`) lists other nodes. Each check says why in a short JSON body:
/// `{"status":"ok","checks":{"eventLoop":{"ok":true,"detail":"responded in 0.1 ms"}}}`.
public struct HealthReport: Sendable {
    public struct Check: Sendable {
        public let name: String
        public let ok: Bool
        public let detail: String
    }

    public let checks: [Check]
    public var ok: Bool { checks.allSatisfy(\.ok) }

    public var json: JSON {
        .object([
            ("status", .string(ok ? "ok" : "fail")),
            ("checks", .object(checks.map { ($0.name, .object([("ok", .bool($0.ok)), ("detail", .string($0.detail))])) })),
        ])
    }

    static let loopTimeoutMs: Int64 = 1000

    public static func health(of node: Node) async -> HealthReport {
        HealthReport(checks: [await eventLoop(node)])
    }

    public static func readiness(of node: Node) async -> HealthReport {
        var checks = [await eventLoop(node)]
        if node.configuration.noTun {
            checks.append(Check(name: "tun", ok: true, detail: "disabled (--no-tun)"))
        } else {
            checks.append(Check(name: "tun", ok: node.isTunReady,
                                detail: node.isTunReady ? "\(node.configuration.tunName) configured" : "not configured"))
        }
        let listening = node.peers?.isListening ?? false
        checks.append(Check(name: "listener", ok: listening,
                            detail: listening ? "bound on port \(node.configuration.tcpListenPort)" : "not bound"))
        // Peers DNS names count as configured: a lone node (DNS lists only itself) is ready.
        let configured = node.configuration.peers.count
        let fromDNS = node.dnsDiscovery?.endpointCount ?? 0
        let alive = await (node.peers?.peers() ?? []).filter { $0.state == .alive }.count
        checks.append(Check(name: "peers", ok: configured + fromDNS == 0 || alive > 0,
                            detail: "\(alive) alive, \(configured) configured" + (node.configuration.peerDNS.isEmpty ? "" : ", \(fromDNS) from DNS")))
        return HealthReport(checks: checks)
    }

    private static func eventLoop(_ node: Node) async -> Check {
        guard let latency = await node.loopLatency(timeoutMs: loopTimeoutMs) else {
            return Check(name: "eventLoop", ok: false,
                         detail: node.service == nil ? "node not running" : "no answer within \(loopTimeoutMs) ms")
        }
        let ms = Double(latency.components.attoseconds) / 1e15 + Double(latency.components.seconds) * 1000
        return Check(name: "eventLoop", ok: true, detail: "responded in \(ms.formatted1) ms")
    }
}

extension Double {
    /// One decimal, without Foundation's formatter.
    var formatted1: String {
        let tenths = (self * 10).rounded()
        return "\(Int64(tenths) / 10).\(abs(Int64(tenths) % 10))"
    }
}

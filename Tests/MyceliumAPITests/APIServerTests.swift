import Foundation
import Logging
import MyceliumAPI
import MyceliumCore
import MyceliumCrypto
import MyceliumNode
import Synchronization
import Testing

/// Every endpoint of the REST API against live nodes in this process (no TUN, loopback only),
/// through the same HTTP client the CLI uses; errors included.
@Suite(.serialized) struct APIServerTests {
    /// A node with no TUN on an ephemeral port, and an HTTP server for it.
    final class Running: Sendable {
        let node: Node
        let port: Int
        let server: Task<Void, any Error>
        var client: APIClient { APIClient(address: APIAddress(host: "127.0.0.1", port: UInt16(port))) }

        init(node: Node, port: Int, server: Task<Void, any Error>) {
            self.node = node
            self.port = port
            self.server = server
        }

        func stop() async {
            server.cancel()
            _ = await server.result
            await node.stop()
        }
    }

    static func start(peers: [Endpoint] = [], metrics: NodeMetrics? = nil) async throws -> Running {
        var configuration = Node.Configuration()
        configuration.noTun = true
        configuration.tcpListenPort = 0
        configuration.quicListenPort = 0
        configuration.peers = peers
        // These nodes run in the machine's own namespace: no multicast on its real interfaces, and
        // no neighbours found there (another test's node would become a second peer).
        configuration.peerDiscovery = false
        let logger = Logger(label: "test")
        let node = Node(identity: NodeIdentity(secretKey: SecretKey.generate()), configuration: configuration, logger: logger)
        try await node.start()
        let bound = Mutex<Int?>(nil)
        let router = metrics.map { APIServer.metricsRouter(node: node, metrics: $0) } ?? APIServer.router(node: node)
        let app = APIServer.application(router: router, address: APIAddress(host: "127.0.0.1", port: 0), name: "test",
                                        logger: logger) { port in bound.withLock { $0 = port } }
        let server = Task { try await app.runService() }
        for _ in 0..<100 {
            if let port = bound.withLock({ $0 }) { return Running(node: node, port: port, server: server) }
            try await Task.sleep(for: .milliseconds(20))
        }
        server.cancel()
        throw CancellationError()
    }

    /// Polls `body` every 50 ms for at most `seconds`.
    static func eventually(seconds: Int = 10, _ body: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<(seconds * 20) {
            if try await body() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    static func json(_ response: APIClient.Response) throws -> JSON { try JSON(parsing: response.body) }

    @Test("admin, peers, routes, pubkey, stats and the OpenAPI document on a node with one neighbour")
    func readEndpoints() async throws {
        let a = try await Self.start()
        let b = try await Self.start(peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(a.node.listenPort!)")])
        let api = a.client

        let info = try Self.json(try await api.get("/api/v1/admin"))
        #expect(info["nodeIp"]?.string == a.node.identity.address.description)
        #expect(info["nodeSubnet"]?.string == a.node.identity.subnet.description)
        #expect(info["nodePubkey"]?.string == a.node.identity.publicKey.hex)
        #expect(info["nodeStartTime"]?.int64 == a.node.startTime)

        #expect(try await Self.eventually {
            try Self.json(try await api.get("/api/v1/admin/routes/selected")).array?
                .contains { $0["subnet"]?.string == b.node.identity.subnet.description } == true
        }, "A selects B's /64")
        let route = try Self.json(try await api.get("/api/v1/admin/routes/selected")).array!.first!
        // A's listener is dual-stack, so B's IPv4 connection shows as v4-mapped, as with Rust.
        #expect(route["nextHop"]?.string?.wholeMatch(of: /TCP \[::ffff:127\.0\.0\.1\]:\d+ <-> \[::ffff:127\.0\.0\.1\]:\d+/) != nil,
                "\(route)")
        #expect(route["metric"]?.uint64 == 0, "the neighbour's own /64 is advertised with metric 0")

        let peers = try Self.json(try await api.get("/api/v1/admin/peers")).array!
        #expect(peers.count == 1)
        #expect(peers.first?["type"]?.string == "inbound")
        #expect(peers.first?["connectionState"]?.string == "alive")
        #expect(peers.first?["endpoint"]?["proto"]?.string == "tcp")
        #expect((peers.first?["rxBytes"]?.uint64 ?? 0) > 0)

        let key = try Self.json(try await api.get("/api/v1/pubkey/\(b.node.identity.address)"))
        #expect(key.compact == "{\"publicKey\":\"\(b.node.identity.publicKey.hex)\"}")
        let own = try Self.json(try await api.get("/api/v1/pubkey/\(a.node.identity.address)"))
        #expect(own["publicKey"]?.string == a.node.identity.publicKey.hex)
        #expect(try await api.get("/api/v1/pubkey/5ff:1:2:3::1").status == 404)
        #expect(try await api.get("/api/v1/pubkey/not-an-ip").status == 400)

        #expect(try Self.json(try await api.get("/api/v1/admin/routes/fallback")).array != nil)
        #expect(try Self.json(try await api.get("/api/v1/admin/routes/queried")).array != nil)
        let stats = try Self.json(try await api.get("/api/v1/admin/stats/packets"))
        #expect(stats["bySource"]?.array != nil && stats["byDestination"]?.array != nil)

        let document = try await api.get("/api/v1/openapi.yaml")
        #expect(document.status == 200)
        let onDisk = try String(contentsOfFile: #filePath.replacingOccurrences(of: "Tests/MyceliumAPITests/APIServerTests.swift",
                                                                                with: "docs/api.yaml"), encoding: .utf8)
        #expect(document.text == onDisk, "the served document is docs/api.yaml as written")
        #expect(try await api.get("/api/v1/nothing-here").status == 404)
        await b.stop()
        await a.stop()
    }

    @Test("peers can be added and removed, with Rust's status codes for every mistake")
    func peerManagement() async throws {
        let a = try await Self.start()
        let api = a.client
        // Port 1 on loopback refuses: the peer exists but stays unconnected; nothing leaves the host.
        let body = #"{"endpoint":"tcp://127.0.0.1:1"}"#
        #expect(try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: body).status == 204)
        #expect(try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: body).status == 409)
        let listed = try Self.json(try await api.get("/api/v1/admin/peers")).array!
        #expect(listed.count == 1)
        #expect(listed.first?["type"]?.string == "static")
        #expect(["connecting", "dead"].contains(listed.first?["connectionState"]?.string ?? ""))
        #expect(listed.first?["lastConnected"]?.isNull == true)

        for bad in [#"{"endpoint":"127.0.0.1:1"}"#, #"{"endpoint":"tcp://[::1]:0"}"#, #"{"endpoint":"quic://peer.example:9651"}"#,
                    #"{"peer":"tcp://[::1]:9651"}"#, "not json", ""] {
            let response = try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: bad)
            #expect(response.status == 400, "POST \(bad)")
            #expect(!response.text.isEmpty, "errors are explained in plain text")
        }
        // A QUIC peer by address is taken (nothing answers on loopback port 1; it stays unconnected).
        let quic = #"{"endpoint":"quic://[::1]:1"}"#
        #expect(try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: quic).status == 204)
        let quicPath = "/api/v1/admin/peers/" + CLIRender.percentEncoded("quic://[::1]:1")
        #expect(try await api.request(APIClient.Method.DELETE, quicPath).status == 204)
        // A pinned key: listed with the peer; the same address again, pinned or not, is a conflict;
        // the address alone removes it.
        let key = String(repeating: "5a", count: 32)
        let pinned = #"{"endpoint":"tcp://[::1]:1?key="# + key + #""}"#
        #expect(try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: pinned).status == 204)
        #expect(try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: #"{"endpoint":"tcp://[::1]:1"}"#).status == 409)
        let withKey = try Self.json(try await api.get("/api/v1/admin/peers")).array!
        #expect(withKey.contains { $0["pinnedKey"]?.string == key && $0["endpoint"]?["addr"]?["socket"]?.string == "[::1]:1" })
        #expect(withKey.filter { $0["pinnedKey"] != nil }.count == 1, "only the pinned peer has the field")
        let badKey = try await api.request(APIClient.Method.POST, "/api/v1/admin/peers", json: #"{"endpoint":"tcp://[::1]:2?key=12"}"#)
        #expect(badKey.status == 400 && badKey.text.contains("key=<64 hex digits>"), "\(badKey.text)")
        #expect(try await api.request(APIClient.Method.DELETE, "/api/v1/admin/peers/" + CLIRender.percentEncoded("tcp://[::1]:1")).status == 204)
        let path = "/api/v1/admin/peers/" + CLIRender.percentEncoded("tcp://127.0.0.1:1")
        #expect(try await api.request(APIClient.Method.DELETE, path).status == 204)
        #expect(try await api.request(APIClient.Method.DELETE, path).status == 404)
        #expect(try await api.request(APIClient.Method.DELETE, "/api/v1/admin/peers/garbage").status == 400)
        #expect(try await api.request(APIClient.Method.DELETE, "/api/v1/admin/peers/tcp%3A%2F%2F%ZZ").status == 400)
        #expect(try Self.json(try await api.get("/api/v1/admin/peers")).array?.isEmpty == true)
        await a.stop()
    }

    @Test("health and readiness say why, and readiness waits for a configured peer")
    func health() async throws {
        let lonely = try await Self.start(peers: [try Endpoint(parsing: "tcp://127.0.0.1:1")])
        let healthy = try await lonely.client.get("/healthz")
        #expect(healthy.status == 200)
        #expect(try Self.json(healthy)["checks"]?["eventLoop"]?["ok"]?.bool == true)
        let notReady = try await lonely.client.get("/readyz")
        #expect(notReady.status == 503)
        let report = try Self.json(notReady)
        #expect(report["status"]?.string == "fail")
        #expect(report["checks"]?["peers"]?["detail"]?.string == "0 alive, 1 configured")
        #expect(report["checks"]?["tun"]?["ok"]?.bool == true)
        #expect(report["checks"]?["listener"]?["ok"]?.bool == true)

        let alone = try await Self.start()
        #expect(try await alone.client.get("/readyz").status == 200, "no peers configured: ready on its own")
        await alone.stop()
        await lonely.stop()
    }

    @Test("/metrics is valid Prometheus text with Rust's names, and counts what happened")
    func metrics() async throws {
        let a = try await Self.start(metrics: NodeMetrics())
        let b = try await Self.start(peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(a.node.listenPort!)")])
        #expect(try await Self.eventually { await a.node.routes().selected.count == 1 })
        let response = try await a.client.get("/metrics")
        #expect(response.status == 200)
        let samples = try PrometheusText.parse(response.text)
        #expect(samples["mycelium_router_peer_added"] == 1)
        #expect(samples["mycelium_routes_selected"] == 1)
        #expect(samples["mycelium_peers_alive"] == 1)
        #expect((samples["mycelium_router_processed_tlvs{tlv_type=\"update\"}"] ?? 0) >= 1)
        #expect(samples["mycelium_datapath_decrypt_failures"] == 0)
        #expect(samples.keys.contains("mycelium_datapath_dropped{reason=\"no_route\"}"))
        #expect(try await a.client.get("/healthz").status == 200, "health is on the metrics address too")
        // Counters never go backwards between scrapes.
        let again = try PrometheusText.parse(try await a.client.get("/metrics").text)
        for (name, value) in samples where name.hasPrefix("mycelium_router_processed") { #expect(again[name]! >= value) }
        await b.stop()
        await a.stop()
    }
}

/// A strict reader of the Prometheus text exposition format (0.0.4): every sample line must be
/// `name{labels} value`, and every metric must have a `# TYPE` line before its samples.
enum PrometheusText {
    struct Invalid: Error, CustomStringConvertible { let description: String }

    static func parse(_ text: String) throws -> [String: Double] {
        var types: [String: String] = [:]
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw Invalid(description: "bad TYPE line: \(line)")
                }
                guard types[String(parts[2])] == nil else { throw Invalid(description: "duplicate TYPE for \(parts[2])") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let m = line.wholeMatch(of: /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (\S+)/),
                  let value = Double(m.output.3) else {
                throw Invalid(description: "bad sample line: \(line)")
            }
            guard types[String(m.output.1)] != nil else { throw Invalid(description: "no TYPE before \(m.output.1)") }
            let key = String(m.output.1) + (m.output.2.map(String.init) ?? "")
            guard samples[key] == nil else { throw Invalid(description: "duplicate sample \(key)") }
            samples[key] = value
        }
        guard !samples.isEmpty else { throw Invalid(description: "no samples") }
        return samples
    }
}

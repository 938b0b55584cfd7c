import Foundation
import Testing

/// The daemon's control surfaces as users and tools meet them: the API against its OpenAPI
/// document (schemathesis), the CLI against the API, and /metrics, all in a namespace of our own
/// (POSTed peers can only be dialled inside it).
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct APIContractTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A with a TUN, peered with B, its API on the default address and metrics on 127.0.0.1:9100.
    static func twoNodes(_ lab: NamespaceLab) throws -> (a: String, b: String) {
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, bFromA) = try lab.link(a, b)
        try lab.startNode(b)
        try lab.startNode(a, peers: [bFromA], arguments: ["--metrics-api-address", "127.0.0.1:9100"])
        let target = try lab.address(of: b)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach B: \(lab.log(of: a))")
        return (a, b)
    }

    static func cli(_ ns: String, _ args: [String]) -> (status: Int32, output: String) {
        NamespaceLab.run(["ip", "netns", "exec", ns, NamespaceLab.binary] + args)
    }

    @Test("schemathesis finds the live API and docs/api.yaml in agreement")
    func openAPIContract() throws {
        let which = NamespaceLab.run(["sh", "-c", "command -v schemathesis"])
        try #require(which.status == 0, "schemathesis is missing: `make test` installs it (scripts/install-test-tools.sh)")
        let lab = try NamespaceLab()
        let (a, _) = try Self.twoNodes(lab)
        // positive_data_acceptance is left out: the schema cannot express which strings are valid
        // endpoints or IP addresses, so schema-valid random strings rightly get 400, as in Rust.
        let run = NamespaceLab.run([
            "ip", "netns", "exec", a, which.output.trimmingCharacters(in: .whitespacesAndNewlines), "run",
            "\(Self.repository)/docs/api.yaml", "--url", "http://127.0.0.1:8989", "--checks", "all",
            "--exclude-checks", "positive_data_acceptance", "--max-examples", "40", "--seed", "1", "--no-color",
            // Pop and push wait as long as their timeout asks (any u64, as Rust): generated values
            // would hold the run for hours. MessageAPITests covers both, shapes included.
            "--exclude-operation-id", "popMessage", "--exclude-operation-id", "pushMessage",
        ], timeout: 300)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("passed"), "\(run.output)")
    }

    @Test("the CLI lists, adds and removes peers and shows routes of the running daemon")
    func cliAgainstDaemon() throws {
        let lab = try NamespaceLab()
        let (a, b) = try Self.twoNodes(lab)
        let peers = Self.cli(a, ["peers", "list"])
        #expect(peers.status == 0)
        let lines = peers.output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("Protocol  Socket") == true, "\(peers.output)")
        #expect(lines.count == 2 && lines[1].contains("static") && lines[1].contains("alive"), "\(peers.output)")

        let routes = Self.cli(a, ["routes", "selected"])
        let subnetB = try JSONSerialization.jsonObject(with: Data(NamespaceLab.run([NamespaceLab.binary, "inspect", "--json", "-k",
                                                                                     lab.nodes[b]!.keyFile]).output.utf8)) as! [String: String]
        #expect(routes.output.contains(subnetB["subnet"]!), "\(routes.output)")
        let json = Self.cli(a, ["routes", "selected", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
        #expect(parsed?.first?["subnet"] as? String == subnetB["subnet"], "\(json.output)")

        #expect(Self.cli(a, ["peers", "add", "tcp://[fd77:99::1]:9651"]).output == "added tcp://[fd77:99::1]:9651\n")
        let again = Self.cli(a, ["peers", "add", "tcp://[fd77:99::1]:9651"])
        #expect(again.status != 0 && again.output.contains("already exists (HTTP 409)"), "\(again.output)")
        #expect(Self.cli(a, ["peers", "list", "--json"]).output.contains("\"socket\": \"[fd77:99::1]:9651\""))
        #expect(Self.cli(a, ["peers", "remove", "tcp://[fd77:99::1]:9651"]).status == 0)
        let missing = Self.cli(a, ["peers", "remove", "tcp://[fd77:99::1]:9651"])
        #expect(missing.status != 0 && missing.output.contains("(HTTP 404)"), "\(missing.output)")
        #expect(Self.cli(a, ["stats", "packets"]).output.hasPrefix("By source\nIP"))

        let down = Self.cli(a, ["peers", "list", "--api-addr", "127.0.0.1:1"])
        #expect(down.status != 0)
        #expect(down.output == "Error: cannot reach the mycelium API at 127.0.0.1:1 (connection refused); is the daemon running? "
            + "(set --api-addr if it listens elsewhere)\n", "one clear line when the daemon is not running")
    }

    @Test("/metrics, /healthz and /readyz of the running daemon")
    func metricsAndProbes() throws {
        let lab = try NamespaceLab()
        let (a, _) = try Self.twoNodes(lab)
        func get(_ url: String) -> String {
            NamespaceLab.run(["ip", "netns", "exec", a, "python3", "-c", """
                import urllib.request, urllib.error
                try:
                    r = urllib.request.urlopen("\(url)", timeout=5); print(r.status); print(r.read().decode())
                except urllib.error.HTTPError as e:
                    print(e.code); print(e.read().decode())
                """]).output
        }
        let metrics = get("http://127.0.0.1:9100/metrics")
        #expect(metrics.hasPrefix("200\n"), "\(metrics)")
        for line in ["mycelium_router_peer_added 1", "mycelium_peers_alive 1.0", "mycelium_routes_selected 1.0"] {
            #expect(metrics.contains(line + "\n"), "missing \(line)")
        }
        #expect(metrics.contains("mycelium_datapath_packets{direction=\"tun_in\"}"))
        let ready = get("http://127.0.0.1:8989/readyz")
        #expect(ready.hasPrefix("200\n{\"status\":\"ok\""), "\(ready)")
        #expect(ready.contains("\"tun\":{\"ok\":true,\"detail\":\"mycelium configured\"}"), "\(ready)")
        #expect(get("http://127.0.0.1:9100/healthz").hasPrefix("200\n"))
    }

    @Test("mycelium healthcheck (the image's HEALTHCHECK): 0 when ready, 1 while a configured peer is missing or the node is down")
    func healthcheckCommand() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), lonely = try lab.host("lonely")
        try lab.startNode(a)
        // A peer that never answers: alive but not ready.
        try lab.startNode(lonely, peers: ["fd77:99::1"])
        let deadline = Date().addingTimeInterval(20)
        var ready = Self.cli(a, ["healthcheck"])
        while ready.status != 0, Date() < deadline {
            usleep(100_000)
            ready = Self.cli(a, ["healthcheck"])
        }
        #expect(ready.status == 0 && ready.output.contains("\"status\":\"ok\""), "\(ready.output)")
        var notReady = Self.cli(lonely, ["healthcheck"])
        while !notReady.output.contains("\"checks\""), Date() < deadline {
            usleep(100_000)
            notReady = Self.cli(lonely, ["healthcheck"])
        }
        #expect(notReady.status == 1 && notReady.output.contains("\"peers\":{\"ok\":false"), "\(notReady.output)")
        #expect(Self.cli(lonely, ["healthcheck", "--live"]).status == 0, "alive all the same")
        lab.stopNode(a)
        let down = Self.cli(a, ["healthcheck"])
        #expect(down.status == 1 && down.output.contains("127.0.0.1:8989"), "names the address it could not reach: \(down.output)")
    }
}

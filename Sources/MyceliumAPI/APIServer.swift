public import Hummingbird
public import Logging
import MyceliumCore
public import MyceliumNode
import NIOCore
import NIOPosix

/// The REST API (spec §9): the routes Rust Mycelium v0.7.10 serves under `/api/v1` for
/// administration, plus `/api/v1/openapi.yaml`, `/healthz` and `/readyz`. JSON bodies are
/// serde-compatible (see `JSON`); errors are plain text with the status code, as in Rust.
public enum APIServer {
    public typealias Context = BasicRequestContext

    /// Largest request body we read (a peer endpoint is a few dozen bytes).
    static let maxBody = 16 * 1024

    /// `cniAttachments`, when the CNI agent runs, counts its attachments for `/admin`.
    public static func router(node: Node, cniAttachments: (@Sendable () -> Int)? = nil) -> Router<Context> {
        let router = Router(context: Context.self)
        let api = router.group("/api/v1")

        api.get("/admin") { _, _ in
            json(APIDocuments.info(subnet: node.identity.subnet, address: node.identity.address,
                                   publicKey: node.identity.publicKey, startTime: node.startTime,
                                   cniAttachments: cniAttachments?()))
        }
        api.get("/admin/peers") { _, _ in
            let peers = await node.peers?.peers() ?? []
            let now = RouterService.now().milliseconds
            return json(.array(peers.map { APIDocuments.peer($0, nowMs: now) }))
        }
        api.post("/admin/peers") { request, _ in
            let body = try await request.body.collect(upTo: maxBody)
            guard let document = try? JSON(parsing: body.readableBytesView), let text = document["endpoint"]?.string else {
                return plain(.badRequest, "expected a JSON body {\"endpoint\": \"tcp://HOST:PORT\"}")
            }
            let endpoint: Endpoint
            do { endpoint = try Endpoint(parsing: text) } catch { return plain(.badRequest, "\(error)") }
            guard let peers = node.peers else { return plain(.serviceUnavailable, "node is not running") }
            do throws(PeerManager.AddError) {
                try await peers.add(endpoint)
            } catch .exists {
                return plain(.conflict, "a peer with endpoint \(endpoint) already exists")
            } catch .ownKey {
                return plain(.badRequest, "\(endpoint) pins this node's own key")
            } catch .needsAddress {
                return plain(.badRequest, "quic:// peers need an IP address, not a name")
            } catch let .unsupportedProtocol(proto) {
                switch proto {
                case .tls: return plain(.badRequest, "tls:// peers need a private network (--network-name and --network-key-file); use tcp://")
                case .quic: return plain(.badRequest, "quic:// peers need QUIC, which is disabled (--disable-quic) or absent in a private network; use tcp:// (or tls://)")
                case .tcp: return plain(.badRequest, "tcp:// peers are not accepted")
                }
            }
            return Response(status: .noContent)
        }
        api.delete("/admin/peers/:endpoint") { _, context in
            let raw = context.parameters.get("endpoint") ?? ""
            guard let text = percentDecoded(raw) else { return plain(.badRequest, "malformed percent-encoding in '\(raw)'") }
            let endpoint: Endpoint
            do { endpoint = try Endpoint(parsing: text) } catch { return plain(.badRequest, "\(error)") }
            guard await node.peers?.remove(endpoint) == true else {
                return plain(.notFound, "no peer with endpoint \(endpoint)")
            }
            return Response(status: .noContent)
        }
        api.get("/admin/routes/selected") { _, _ in
            json(.array(await node.routes().selected.map(APIDocuments.route)))
        }
        api.get("/admin/routes/fallback") { _, _ in
            json(.array(await node.routes().fallback.map(APIDocuments.route)))
        }
        api.get("/admin/routes/queried") { _, _ in
            json(.array(await node.queriedSubnets().map { APIDocuments.queried(subnet: $0.subnet, secondsLeft: $0.secondsLeft) }))
        }
        api.get("/admin/stats/packets") { _, _ in
            json(APIDocuments.packetStats(await node.traffic()))
        }
        api.get("/admin/sessions") { _, _ in
            json(.array(await node.sessions().map(APIDocuments.session)))
        }
        api.get("/pubkey/:ip") { _, context in
            let raw = context.parameters.get("ip") ?? ""
            guard let text = percentDecoded(raw), let ip = IPAddress(text) else {
                return plain(.badRequest, "'\(raw)' is not an IP address")
            }
            guard case let .v6(v6) = ip, let key = await node.publicKey(for: v6) else {
                return plain(.notFound, "no route to \(ip), so its public key is unknown")
            }
            return json(APIDocuments.publicKey(key))
        }
        addMessageRoutes(to: api, node: node)
        addProxyRoutes(to: api, node: node)
        api.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"],
                     body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.api_yaml)))
        }
        addHealth(to: router, node: node)
        addMethodNotAllowed(to: router, paths: messagePaths.merging(proxyPaths) { a, _ in a }.merging([
            "/api/v1/admin": [.get], "/api/v1/admin/peers": [.get, .post], "/api/v1/admin/peers/:endpoint": [.delete],
            "/api/v1/admin/routes/selected": [.get], "/api/v1/admin/routes/fallback": [.get],
            "/api/v1/admin/routes/queried": [.get], "/api/v1/admin/stats/packets": [.get], "/api/v1/admin/sessions": [.get],
            "/api/v1/pubkey/:ip": [.get],
            "/api/v1/openapi.yaml": [.get], "/healthz": [.get], "/readyz": [.get],
        ]) { a, _ in a })
        return router
    }

    /// A known path asked with a method it does not serve is 405 with `Allow`, as axum answers
    /// (not 404, which would say the path does not exist).
    static func addMethodNotAllowed(to router: Router<Context>, paths: [String: [HTTPRequest.Method]]) {
        let candidates: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .trace, HTTPRequest.Method("QUERY")!]
        for (path, allowed) in paths {
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in candidates where !allowed.contains(method) {
                router.on(RouterPath(path), method: method) { _, _ in
                    Response(status: .methodNotAllowed, headers: [.allow: allow, .contentType: "text/plain; charset=utf-8"],
                             body: .init(byteBuffer: ByteBuffer(string: "method not allowed; use \(allow)")))
                }
            }
        }
    }

    /// `/healthz` and `/readyz` (also on the metrics address).
    public static func addHealth(to router: Router<Context>, node: Node) {
        router.get("/healthz") { _, _ in report(await HealthReport.health(of: node)) }
        router.get("/readyz") { _, _ in report(await HealthReport.readiness(of: node)) }
    }

    /// The metrics address: `/metrics` in Prometheus text, and the health endpoints.
    public static func metricsRouter(node: Node, metrics: NodeMetrics) -> Router<Context> {
        let router = Router(context: Context.self)
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: await metrics.scrape(node))))
        }
        addHealth(to: router, node: node)
        addMethodNotAllowed(to: router, paths: ["/metrics": [.get], "/healthz": [.get], "/readyz": [.get]])
        return router
    }

    /// A Hummingbird application on `address`; `onBound` learns the port (tests bind port 0).
    public static func application(router: Router<Context>, address: APIAddress, name: String, logger: Logger,
                                   onBound: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(router: router,
                    configuration: .init(address: .hostname(address.host, port: Int(address.port)), serverName: name),
                    onServerRunning: { channel in await onBound(channel.localAddress?.port ?? 0) },
                    logger: logger)
    }

    // MARK: helpers

    static func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.compact)))
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func report(_ r: HealthReport) -> Response {
        json(r.json, status: r.ok ? .ok : .serviceUnavailable)
    }

    /// RFC 3986 percent-decoding (the endpoint in `DELETE /admin/peers/{endpoint}` arrives as
    /// `tcp%3A%2F%2F1.2.3.4%3A9651`); nil when an escape is malformed or the result is not UTF-8.
    static func percentDecoded(_ s: String) -> String? {
        var out: [UInt8] = []
        var bytes = s.utf8.makeIterator()
        while let b = bytes.next() {
            guard b == UInt8(ascii: "%") else { out.append(b); continue }
            guard let h = bytes.next(), let l = bytes.next(),
                  let v = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) else { return nil }
            out.append(v)
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// `--api-addr` / `--metrics-api-address`: an IP address and a port, as Rust's `SocketAddr`
/// (`127.0.0.1:8989`, `[::1]:8989`).
public struct APIAddress: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard IPv6Address(host) != nil else { return nil }
        } else {
            guard IPv4Address(host) != nil else { return nil }
        }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Binds the address (with `SO_REUSEADDR`, as the server will) and lets go at once: a port
    /// in use is found before anything starts, so it fails start-up in one line.
    public func probe() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: Int(port)).get()
        try await channel.close().get()
    }

    public static let defaultAPI = APIAddress(host: "127.0.0.1", port: 8989)
    public static let defaultJSONRPC = APIAddress(host: "127.0.0.1", port: 8990)
}

public import Hummingbird
import MyceliumCore
import MyceliumDatapath
public import MyceliumNode
import NIOCore

/// The JSON-RPC API (spec §10): Rust Mycelium's method names, params and error codes, with the
/// same JSON shapes as the REST API (`APIDocuments`). Served on `--jsonrpc-addr`, POST on any path.
public enum RPCMethods {
    /// Each method with its params' names (positional order), for named params and `rpc.discover`.
    static let signatures: [(name: String, params: [String], summary: String)] = [
        ("getInfo", [], "Node subnet, address, public key and start time"),
        ("getPublicKeyFromIp", ["ip"], "The public key owning an overlay address"),
        ("getPeers", [], "Peers and their statistics"),
        ("addPeer", ["endpoint"], "Add a static peer, e.g. tcp://1.2.3.4:9651"),
        ("deletePeer", ["endpoint"], "Remove a peer"),
        ("getSelectedRoutes", [], "Selected routes"),
        ("getFallbackRoutes", [], "Known routes that are not selected"),
        ("getQueriedSubnets", [], "Subnets being looked for"),
        ("getPacketStatistics", [], "Traffic by source and destination"),
        ("getProxies", [], "Open SOCKS5 proxies found by probing"),
        ("connectProxy", ["remote"], "Relay [::]:1080 to a SOCKS5 proxy ([ipv6]:port, or null for the best known one)"),
        ("disconnectProxy", [], "Stop relaying"),
        ("startProxyProbe", [], "Probe the nodes we have routes to for SOCKS5 proxies, every 60 s"),
        ("stopProxyProbe", [], "Stop probing"),
        ("popMessage", ["peek", "timeout", "topic"], "The oldest received message, waiting up to timeout seconds; null if none"),
        ("pushMessage", ["message", "reply_timeout"], "Send a message; with reply_timeout, wait for its reply"),
        ("pushMessageReply", ["id", "message"], "Reply to a received message"),
        ("getMessageInfo", ["id"], "Status of a sent message"),
        ("getDefaultTopicAction", [], "Whether topics without configuration accept every sender"),
        ("setDefaultTopicAction", ["accept"], "Set the default topic action"),
        ("getTopics", [], "Configured topics (base64)"),
        ("addTopic", ["topic"], "Configure a topic (base64)"),
        ("removeTopic", ["topic"], "Remove a topic's configuration"),
        ("getTopicSources", ["topic"], "Subnets allowed to send on a topic"),
        ("addTopicSource", ["topic", "subnet"], "Allow a subnet to send on a topic"),
        ("removeTopicSource", ["topic", "subnet"], "Stop allowing a subnet"),
        ("getTopicForwardSocket", ["topic"], "The Unix socket a topic's messages go to, or null"),
        ("setTopicForwardSocket", ["topic", "socket_path"], "Forward a topic's messages to a Unix socket"),
        ("removeTopicForwardSocket", ["topic"], "Stop forwarding a topic"),
        ("rpc.discover", [], "This API's OpenRPC description"),
    ]

    typealias Failure = JSONRPC.Failure

    /// The router of the JSON-RPC address: POST anywhere, as jsonrpsee accepts.
    public static func router(node: Node) -> Router<APIServer.Context> {
        let router = Router(context: APIServer.Context.self)
        let handler = handler(node: node)
        let serve: @Sendable (Request, APIServer.Context) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: APIServer.maxMessageBody)
            guard let answer = await JSONRPC.respond(to: body.readableBytesView, handler: handler) else {
                return Response(status: .noContent)
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: answer)))
        }
        router.post("/", use: serve)
        router.post("/**", use: serve)
        APIServer.addHealth(to: router, node: node)
        return router
    }

    public static func handler(node: Node) -> JSONRPC.Handler {
        { method, params throws(Failure) in
            try await call(method, params, node: node)
        }
    }

    static func call(_ method: String, _ p: JSONRPC.Params, node: Node) async throws(Failure) -> JSON {
        guard let signature = signatures.first(where: { $0.name == method }) else { throw .methodNotFound(method) }
        try p.atMost(signature.params.count)
        switch method {
        case "getInfo":
            return APIDocuments.info(subnet: node.identity.subnet, address: node.identity.address,
                                     publicKey: node.identity.publicKey, startTime: node.startTime)
        case "getPublicKeyFromIp":
            let text = try p.string(0, "ip")
            guard let ip = IPv6Address(text) else { throw Failure(code: -32007, data: "'\(text)' is not an IPv6 address") }
            guard let key = await node.publicKey(for: ip) else { throw Failure(code: -32008, data: "no route to \(ip)") }
            return .string(key.hex)
        case "getPeers":
            let peers = await node.peers?.peers() ?? []
            let now = RouterService.now().milliseconds
            return .array(peers.map { APIDocuments.peer($0, nowMs: now) })
        case "addPeer":
            let endpoint: Endpoint
            do { endpoint = try Endpoint(parsing: try p.string(0, "endpoint")) } catch let error as Failure { throw error } catch {
                throw Failure(code: -32009, data: "\(error)")
            }
            guard let peers = node.peers else { throw .internalError("node is not running") }
            do throws(PeerManager.AddError) { try await peers.add(endpoint) } catch .exists {
                throw Failure(code: -32010, data: "a peer with endpoint \(endpoint) already exists")
            } catch .ownKey {
                throw Failure(code: -32009, data: "\(endpoint) pins this node's own key")
            } catch {
                throw Failure(code: -32009, data: "\(endpoint.proto.rawValue):// peers are not supported here")
            }
            return .bool(true)
        case "deletePeer":
            let endpoint: Endpoint
            do { endpoint = try Endpoint(parsing: try p.string(0, "endpoint")) } catch let error as Failure { throw error } catch {
                throw Failure(code: -32012, data: "\(error)")
            }
            guard await node.peers?.remove(endpoint) == true else { throw Failure(code: -32011, data: "no peer with endpoint \(endpoint)") }
            return .bool(true)
        case "getSelectedRoutes":
            return .array(await node.routes().selected.map(APIDocuments.route))
        case "getFallbackRoutes":
            return .array(await node.routes().fallback.map(APIDocuments.route))
        case "getQueriedSubnets":
            return .array(await node.queriedSubnets().map { APIDocuments.queried(subnet: $0.subnet, secondsLeft: $0.secondsLeft) })
        case "getPacketStatistics":
            return APIDocuments.packetStats(await node.traffic())
        case "rpc.discover":
            return discover()
        case "getProxies":
            return .array((node.proxy?.known ?? []).map { .string($0.description) })
        case "connectProxy":
            var target: SocketAddress?
            if let text = try p.optionalString(0, "remote") {
                guard let socket = APIServer.proxyRemote(text) else { throw .invalidParams("remote must be IP:PORT, e.g. [407:8d2::1]:1080") }
                target = socket
            }
            guard let proxy = node.proxy else { throw Failure(code: -32032, data: "node is not running") }
            do throws(SOCKSProxy.Failure) { return .string(APIServer.socketText(try await proxy.connect(to: target))) } catch {
                throw Failure(code: -32032, data: "\(error)")
            }
        case "disconnectProxy":
            node.proxy?.disconnect()
            return .bool(true)
        case "startProxyProbe":
            node.proxy?.startProbing()
            return .bool(true)
        case "stopProxyProbe":
            node.proxy?.stopProbing()
            return .bool(true)
        default:
            return try await messageCall(method, p, node: node)
        }
    }

    static func messageCall(_ method: String, _ p: JSONRPC.Params, node: Node) async throws(Failure) -> JSON {
        func base64(_ text: String, code: Int) throws(Failure) -> [UInt8] {
            guard let bytes = Base64.decode(text) else { throw Failure(code: code, data: "'\(text)' is not base64") }
            return bytes
        }
        func sendInfo(_ index: Int) throws(Failure) -> APIServer.SendInfo {
            switch APIServer.SendInfo.parse(try p.required(index, "message")) {
            case let .success(info): return info
            case let .failure(why): throw .invalidParams(why.text)
            }
        }
        func refusal(_ error: Node.MessageCallError) -> Failure {
            switch error {
            case .refused(.topicTooLong): Failure(code: -32015, data: "\(error)")
            case .refused(.tooLarge): .invalidParams("\(error)")
            default: Failure(code: -32016, data: "\(error)")
            }
        }
        func topic() throws(Failure) -> [UInt8] { try base64(try p.string(0, "topic"), code: -32021) }

        switch method {
        case "popMessage":
            let peek = try p.optionalBool(0, "peek") ?? false
            let timeout = min(try p.optionalUInt(1, "timeout") ?? 0, APIServer.maxWaitSeconds)
            let topic = try p.optionalString(2, "topic").map { (t: String) throws(Failure) in try base64(t, code: -32013) }
            do throws(Node.MessageCallError) {
                guard let message = try await node.popMessage(topic: topic, peek: peek, timeoutMs: Int64(timeout) * 1000) else { return .null }
                return APIDocuments.receivedMessage(message)
            } catch {
                throw refusal(error)
            }
        case "pushMessage":
            let info = try sendInfo(0)
            let replyTimeout = try p.optionalUInt(1, "reply_timeout").map { min($0, APIServer.maxWaitSeconds) }
            do throws(Node.MessageCallError) {
                switch try await node.pushMessage(info.payload, topic: info.topic, to: info.destination,
                                                  replyTimeoutMs: replyTimeout.map { Int64($0) * 1000 }) {
                case let .sent(id), let .timedOut(id): return .object([("id", .string(APIServer.hexId(id)))])
                case let .replied(message): return APIDocuments.receivedMessage(message)
                }
            } catch {
                throw refusal(error)
            }
        case "pushMessageReply":
            guard let id = APIServer.parseId(try p.string(0, "id")) else { throw Failure(code: -32018, data: "id must be 16 hex digits") }
            let info = try sendInfo(1)
            do throws(Node.MessageCallError) { try await node.replyMessage(id, info.payload, to: info.destination) } catch {
                throw refusal(error)
            }
            return .bool(true)
        case "getMessageInfo":
            guard let id = APIServer.parseId(try p.string(0, "id")) else { throw Failure(code: -32020, data: "id must be 16 hex digits") }
            guard let (status, created, deadline) = await node.messageStatus(id) else {
                throw Failure(code: -32019, data: "no message with id \(APIServer.hexId(id)) is known")
            }
            return APIDocuments.messageInfo(status, created: created, deadline: deadline)
        case "getDefaultTopicAction":
            return .bool(await node.withTopics { $0.defaultAccept } ?? true)
        case "setDefaultTopicAction":
            guard let accept = try p.required(0, "accept").bool else { throw .invalidParams("accept must be true or false") }
            _ = await node.withTopics { $0.defaultAccept = accept }
            return .bool(true)
        case "getTopics":
            return .array((await node.withTopics { $0.names } ?? []).map { .string(Base64.encode($0)) })
        case "addTopic":
            let t = try topic()
            guard t.count <= MessageProtocol.maxTopicLength else { throw Failure(code: -32021, data: "topic longer than 255 bytes") }
            guard await node.withTopics({ (c: inout TopicConfig) -> Bool in (try? c.add(t)) != nil }) == true else {
                throw .internalError("at most \(TopicConfig.maxTopics) topics can be configured")
            }
            return .bool(true)
        case "removeTopic":
            let t = try topic()
            _ = await node.withTopics { $0.remove(t) }
            return .bool(true)
        case "getTopicSources":
            let t = try topic()
            guard let sources = await node.withTopics({ $0.topics[t]?.sources }) ?? nil else {
                throw Failure(code: -32030, data: "topic is not configured")
            }
            return .array(sources.map { .string($0.description) })
        case "addTopicSource", "removeTopicSource":
            let t = try topic()
            let text = try p.string(1, "subnet")
            guard let subnet = TopicConfig.parseSource(text) else { throw Failure(code: -32023, data: "'\(text)' is not a subnet or an address") }
            if method == "addTopicSource" {
                guard await node.withTopics({ (c: inout TopicConfig) -> Bool in (try? c.addSource(subnet, to: t)) != nil }) == true else {
                    throw .internalError("too many topics or sources configured")
                }
            } else {
                _ = await node.withTopics { $0.removeSource(subnet, from: t) }
            }
            return .bool(true)
        case "getTopicForwardSocket":
            let t = try topic()
            return (await node.withTopics { $0.forwardSocket(of: t) } ?? nil).map(JSON.string) ?? .null
        case "setTopicForwardSocket":
            let t = try topic()
            let path = try p.string(1, "socket_path")
            guard path.hasPrefix("/") else { throw .invalidParams("socket_path must be an absolute path") }
            _ = await node.withTopics { $0.setForwardSocket(path, of: t) }
            return .bool(true)
        case "removeTopicForwardSocket":
            let t = try topic()
            _ = await node.withTopics { $0.setForwardSocket(nil, of: t) }
            return .bool(true)
        default:
            throw .methodNotFound(method)
        }
    }

    /// An OpenRPC 1.2.6 document of the methods above.
    static func discover() -> JSON {
        .object([
            ("openrpc", .string("1.2.6")),
            ("info", .object([("title", .string("Mycelium JSON-RPC API (Swift)")), ("version", .string("0.7.10"))])),
            ("methods", .array(signatures.map { s in
                .object([
                    ("name", .string(s.name)),
                    ("summary", .string(s.summary)),
                    ("params", .array(s.params.map { .object([("name", .string($0)), ("schema", .object([]))]) })),
                    ("result", .object([("name", .string("result")), ("schema", .object([]))])),
                ])
            })),
        ])
    }
}

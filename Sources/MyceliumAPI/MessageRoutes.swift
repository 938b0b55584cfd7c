import Hummingbird
import MyceliumCore
import MyceliumDatapath
import MyceliumNode
import NIOCore

/// The message endpoints of the REST API (spec §9), shaped as Rust Mycelium v0.7.10 answers:
/// payloads and topics in padded standard base64, message ids as 16 hex digits.
extension APIServer {
    /// Largest message request body: an 8 MiB payload in base64 plus its JSON.
    static let maxMessageBody = 12 * 1024 * 1024
    /// Longest wait a pop or a push may ask for (Rust takes any u64; a day is plenty).
    static let maxWaitSeconds: UInt64 = 86_400

    static let messagePaths: [String: [HTTPRequest.Method]] = [
        "/api/v1/messages": [.get, .post], "/api/v1/messages/reply/:id": [.post], "/api/v1/messages/status/:id": [.get],
        "/api/v1/messages/topics/default": [.get, .put], "/api/v1/messages/topics": [.get, .post],
        "/api/v1/messages/topics/:topic": [.delete], "/api/v1/messages/topics/:topic/sources": [.get, .post],
        "/api/v1/messages/topics/:topic/sources/:subnet": [.delete],
        "/api/v1/messages/topics/:topic/forward": [.get, .put, .delete],
    ]

    static func addMessageRoutes(to api: RouterGroup<Context>, node: Node) {
        api.get("/messages") { request, _ in
            let query = request.uri.queryParameters
            guard let peek = boolParameter(query["peek"]) else { return plain(.badRequest, "peek must be true or false") }
            var timeout: UInt64 = 0
            if let text = query["timeout"] {
                guard let value = seconds(text) else { return plain(.badRequest, "timeout must be a number of seconds") }
                timeout = value
            }
            var topic: [UInt8]?
            if let text = query["topic"] {
                guard let bytes = Base64.decode(text) else { return plain(.badRequest, "topic must be base64") }
                topic = bytes
            }
            do {
                guard let message = try await node.popMessage(topic: topic, peek: peek, timeoutMs: Int64(timeout) * 1000) else {
                    return Response(status: .noContent)
                }
                return json(APIDocuments.receivedMessage(message))
            } catch {
                return plain(.serviceUnavailable, "\(error)")
            }
        }
        api.post("/messages") { request, _ in
            var replyTimeout: UInt64?
            if let text = request.uri.queryParameters["reply_timeout"] {
                guard let value = seconds(text) else { return plain(.badRequest, "reply_timeout must be a number of seconds") }
                replyTimeout = value
            }
            let body = try await request.body.collect(upTo: maxMessageBody)
            let info: SendInfo
            switch SendInfo.parse(body.readableBytesView) {
            case let .success(parsed): info = parsed
            case let .failure(why): return plain(.badRequest, why.text)
            }
            do throws(Node.MessageCallError) {
                switch try await node.pushMessage(info.payload, topic: info.topic, to: info.destination,
                                                  replyTimeoutMs: replyTimeout.map { Int64($0) * 1000 }) {
                case let .sent(id): return json(.object([("id", .string(hexId(id)))]), status: .created)
                case let .replied(message): return json(APIDocuments.receivedMessage(message))
                case let .timedOut(id): return json(.object([("id", .string(hexId(id)))]), status: .requestTimeout)
                }
            } catch {
                return pushRefusal(error)
            }
        }
        api.post("/messages/reply/:id") { request, context in
            guard let id = parseId(context.parameters.get("id")) else { return plain(.badRequest, "message id must be 16 hex digits") }
            let body = try await request.body.collect(upTo: maxMessageBody)
            let info: SendInfo
            switch SendInfo.parse(body.readableBytesView) {
            case let .success(parsed): info = parsed
            case let .failure(why): return plain(.badRequest, why.text)
            }
            do throws(Node.MessageCallError) {
                try await node.replyMessage(id, info.payload, to: info.destination)
            } catch {
                return pushRefusal(error)
            }
            return Response(status: .noContent)
        }
        api.get("/messages/status/:id") { _, context in
            guard let id = parseId(context.parameters.get("id")) else { return plain(.badRequest, "message id must be 16 hex digits") }
            guard let (status, created, deadline) = await node.messageStatus(id) else {
                return plain(.notFound, "no message with id \(hexId(id)) is known")
            }
            return json(APIDocuments.messageInfo(status, created: created, deadline: deadline))
        }
        addTopicRoutes(to: api, node: node)
    }

    private static func addTopicRoutes(to api: RouterGroup<Context>, node: Node) {
        api.get("/messages/topics/default") { _, _ in
            guard let accept = await node.withTopics({ $0.defaultAccept }) else { return plain(.serviceUnavailable, "node is not running") }
            return json(.object([("accept", .bool(accept))]))
        }
        api.put("/messages/topics/default") { request, _ in
            let body = try await request.body.collect(upTo: maxBody)
            guard let accept = (try? JSON(parsing: body.readableBytesView))?["accept"]?.bool else {
                return plain(.badRequest, "expected a JSON body {\"accept\": true|false}")
            }
            _ = await node.withTopics { $0.defaultAccept = accept }
            return Response(status: .noContent)
        }
        api.get("/messages/topics") { _, _ in
            let names = await node.withTopics { $0.names } ?? []
            return json(.array(names.map { .string(Base64.encode($0)) }))
        }
        api.post("/messages/topics") { request, _ in
            // Rust takes the topic as a JSON array of byte values (its OpenAPI says base64; the code wins).
            let body = try await request.body.collect(upTo: maxBody)
            guard let items = (try? JSON(parsing: body.readableBytesView))?.array,
                  let topic = byteArray(items), topic.count <= MessageProtocol.maxTopicLength else {
                return plain(.badRequest, "expected a JSON array of at most 255 byte values, e.g. [116,101,115,116]")
            }
            let added = await node.withTopics { (t: inout TopicConfig) -> Bool in (try? t.add(topic)) != nil }
            guard added == true else { return plain(.serviceUnavailable, "at most \(TopicConfig.maxTopics) topics can be configured") }
            return Response(status: .created)
        }
        api.delete("/messages/topics/:topic") { _, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            _ = await node.withTopics { $0.remove(topic) }
            return Response(status: .noContent)
        }
        api.get("/messages/topics/:topic/sources") { _, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            guard let sources = await node.withTopics({ $0.topics[topic]?.sources }) ?? nil else {
                return plain(.notFound, "topic is not configured")
            }
            return json(.array(sources.map { .string($0.description) }))
        }
        api.post("/messages/topics/:topic/sources") { request, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            let body = try await request.body.collect(upTo: maxBody)
            guard let text = (try? JSON(parsing: body.readableBytesView))?["subnet"]?.string,
                  let subnet = TopicConfig.parseSource(text) else {
                return plain(.badRequest, "expected a JSON body {\"subnet\": \"400::/7\"} with a subnet or an address")
            }
            let added = await node.withTopics { (t: inout TopicConfig) -> Bool in (try? t.addSource(subnet, to: topic)) != nil }
            guard added == true else { return plain(.serviceUnavailable, "too many topics or sources configured") }
            return Response(status: .created)
        }
        api.delete("/messages/topics/:topic/sources/:subnet") { _, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            guard let text = percentDecoded(context.parameters.get("subnet") ?? ""), let subnet = TopicConfig.parseSource(text) else {
                return plain(.badRequest, "the subnet must be a subnet or an address (URL-encoded)")
            }
            _ = await node.withTopics { $0.removeSource(subnet, from: topic) }
            return Response(status: .noContent)
        }
        api.get("/messages/topics/:topic/forward") { _, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            let path = await node.withTopics { $0.forwardSocket(of: topic) } ?? nil
            return json(path.map(JSON.string) ?? .null)
        }
        api.put("/messages/topics/:topic/forward") { request, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            let body = try await request.body.collect(upTo: maxBody)
            guard let path = (try? JSON(parsing: body.readableBytesView))?["socketPath"]?.string, path.hasPrefix("/") else {
                return plain(.badRequest, "expected a JSON body {\"socketPath\": \"/absolute/path\"}")
            }
            _ = await node.withTopics { $0.setForwardSocket(path, of: topic) }
            return Response(status: .noContent)
        }
        api.delete("/messages/topics/:topic/forward") { _, context in
            guard let topic = topicParameter(context) else { return plain(.badRequest, "the topic must be base64 (URL-encoded)") }
            _ = await node.withTopics { $0.setForwardSocket(nil, of: topic) }
            return Response(status: .noContent)
        }
    }

    // MARK: parsing

    /// `MessageSendInfo`: `{"dst": {"ip": …} | {"pk": …}, "topic"?: base64, "payload": base64}`.
    struct SendInfo {
        let destination: IPv6Address
        let topic: [UInt8]
        let payload: [UInt8]

        struct Failure: Error { let text: String }

        static func parse(_ body: some Collection<UInt8>) -> Result<SendInfo, Failure> {
            guard let document = try? JSON(parsing: body) else { return .failure(Failure(text: "the body is not JSON")) }
            return parse(document)
        }

        static func parse(_ document: JSON) -> Result<SendInfo, Failure> {
            let destination: IPv6Address
            if let ip = document["dst"]?["ip"]?.string {
                guard let address = IPv6Address(ip) else {
                    return .failure(Failure(text: "dst.ip '\(ip)' is not an IPv6 address (messages travel between overlay addresses)"))
                }
                destination = address
            } else if let pk = document["dst"]?["pk"]?.string {
                guard let key = PublicKey(hex: pk) else { return .failure(Failure(text: "dst.pk must be 64 hex digits")) }
                destination = key.overlayAddress
            } else {
                return .failure(Failure(text: "dst must be {\"ip\": \"<overlay IPv6>\"} or {\"pk\": \"<64 hex digits>\"}"))
            }
            guard Subnet.overlay.contains(destination) else {
                return .failure(Failure(text: "dst \(destination) is not an overlay address (400::/7)"))
            }
            var topic: [UInt8] = []
            if let t = document["topic"], !t.isNull {
                guard let text = t.string, let bytes = Base64.decode(text) else { return .failure(Failure(text: "topic must be base64")) }
                topic = bytes
            }
            guard let text = document["payload"]?.string, let payload = Base64.decode(text) else {
                return .failure(Failure(text: "payload must be base64 (standard alphabet, padded)"))
            }
            return .success(SendInfo(destination: destination, topic: topic, payload: payload))
        }
    }

    static func pushRefusal(_ error: Node.MessageCallError) -> Response {
        switch error {
        case .notRunning, .tooManyWaiters: plain(.serviceUnavailable, "\(error)")
        case .refused(.topicTooLong): plain(.badRequest, "\(error)")
        case .refused(.tooLarge): plain(.contentTooLarge, "\(error)")
        case .refused(.busy): plain(.serviceUnavailable, "\(error)")
        case .refused(.duplicateId): plain(.conflict, "\(error)")
        }
    }

    static func hexId(_ id: UInt64) -> String {
        var b = [UInt8]()
        b.appendU64(id)
        return Hex.encode(b)
    }

    static func parseId(_ text: String?) -> UInt64? {
        guard let text, text.utf8.count == 16, let bytes = Hex.decode(text) else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func boolParameter(_ text: Substring?) -> Bool? {
        switch text {
        case nil: false
        case "true"?: true
        case "false"?: false
        default: nil
        }
    }

    /// Whole seconds, capped at `maxWaitSeconds`.
    static func seconds(_ text: Substring) -> UInt64? {
        UInt64(text).map { min($0, maxWaitSeconds) }
    }

    static func byteArray(_ items: [JSON]) -> [UInt8]? {
        var out: [UInt8] = []
        for item in items {
            guard let v = item.uint64, v <= 255 else { return nil }
            out.append(UInt8(v))
        }
        return out
    }

    static func topicParameter(_ context: Context) -> [UInt8]? {
        guard let text = percentDecoded(context.parameters.get("topic") ?? "") else { return nil }
        return Base64.decode(text)
    }
}

import MyceliumAPI
import MyceliumCore
import MyceliumNode
import Testing

/// The message endpoints (spec §9) between two live no-TUN nodes peered over loopback: push,
/// pop, reply, status and topics, and Rust's status code for each mistake.
@Suite(.serialized) struct MessageAPITests {
    typealias M = APIClient.Method

    static func pair() async throws -> (APIServerTests.Running, APIServerTests.Running) {
        let a = try await APIServerTests.start()
        let b = try await APIServerTests.start(peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(a.node.listenPort!)")])
        // Messages need a route: wait until each node has selected the other's subnet.
        let routed = try await APIServerTests.eventually {
            let ra = await a.node.routes().selected.map(\.subnet), rb = await b.node.routes().selected.map(\.subnet)
            return ra.contains(b.node.identity.subnet) && rb.contains(a.node.identity.subnet)
        }
        #expect(routed)
        return (a, b)
    }

    static func sendInfo(pk: String, topic: String? = nil, payload: [UInt8]) -> String {
        var members = [#""dst":{"pk":"\#(pk)"}"#]
        if let topic { members.append(#""topic":"\#(Base64.encode(Array(topic.utf8)))""#) }
        members.append(#""payload":"\#(Base64.encode(payload))""#)
        return "{" + members.joined(separator: ",") + "}"
    }

    @Test("push to a public key, pop with a topic filter and a timeout, status through pending to read, a reply to a waiting push")
    func pushPopReply() async throws {
        let (a, b) = try await Self.pair()
        let payload = (0..<5_000).map { UInt8(truncatingIfNeeded: $0) }
        let pushed = try await a.client.request(M.POST, "/api/v1/messages",
                                                json: Self.sendInfo(pk: b.node.identity.publicKey.hex, topic: "chat", payload: payload))
        #expect(pushed.status == 201)
        let id = try #require(try APIServerTests.json(pushed)["id"]?.string)
        #expect(id.count == 16)

        let topic = CLIRender.percentEncoded(Base64.encode(Array("chat".utf8)))
        let popped = try await b.client.get("/api/v1/messages?timeout=5&topic=\(topic)")
        #expect(popped.status == 200)
        let message = try APIServerTests.json(popped)
        #expect(message["id"]?.string == id)
        #expect(message["srcIp"]?.string == a.node.identity.address.description)
        #expect(message["srcPk"]?.string == a.node.identity.publicKey.hex)
        #expect(message["dstPk"]?.string == b.node.identity.publicKey.hex)
        #expect(message["topic"]?.string == Base64.encode(Array("chat".utf8)))
        #expect(message["payload"]?.string.flatMap(Base64.decode) == payload)
        #expect(try await APIServerTests.eventually {
            (try? APIServerTests.json(try await a.client.get("/api/v1/messages/status/\(id)")))?["state"]?.string == "read"
        })
        let status = try APIServerTests.json(try await a.client.get("/api/v1/messages/status/\(id)"))
        #expect(status["dst"]?.string == b.node.identity.address.description && status["msgLen"]?.int64 == 5_000)
        #expect((status["deadline"]?.int64 ?? 0) - (status["created"]?.int64 ?? 0) == 300)

        #expect(try await b.client.get("/api/v1/messages?timeout=0").status == 204)
        #expect(try await b.client.get("/api/v1/messages?timeout=1").status == 204)

        // A push that waits for its reply; B answers through /messages/reply/{id}.
        let asking = Task {
            try await a.client.request(M.POST, "/api/v1/messages?reply_timeout=8",
                                       json: Self.sendInfo(pk: b.node.identity.publicKey.hex, payload: Array("ping".utf8)))
        }
        let question = try APIServerTests.json(try await b.client.get("/api/v1/messages?timeout=5"))
        let qid = try #require(question["id"]?.string)
        #expect(question["topic"] == nil, "an empty topic is left out, as Rust does")
        let reply = Self.sendInfo(pk: a.node.identity.publicKey.hex, payload: Array("pong".utf8))
        #expect(try await b.client.request(M.POST, "/api/v1/messages/reply/\(qid)", json: reply).status == 204)
        let answered = try await asking.value
        #expect(answered.status == 200)
        let answer = try APIServerTests.json(answered)
        #expect(answer["id"]?.string == qid && answer["payload"]?.string == Base64.encode(Array("pong".utf8)))

        // Nobody answers: 408 with the id.
        let unanswered = try await a.client.request(M.POST, "/api/v1/messages?reply_timeout=1",
                                                    json: Self.sendInfo(pk: b.node.identity.publicKey.hex, payload: [1]))
        #expect(unanswered.status == 408)
        #expect(try APIServerTests.json(unanswered)["id"]?.string?.count == 16)
        await b.stop()
        await a.stop()
    }

    @Test("mistakes get Rust's codes: bad base64, long topic, bad destination, bad id, unknown id, bad query")
    func mistakes() async throws {
        let a = try await APIServerTests.start()
        let api = a.client
        let pk = a.node.identity.publicKey.hex
        for bad in ["not json", #"{"dst":{"pk":"\#(pk)"},"payload":"***"}"#, #"{"dst":{"pk":"abc"},"payload":""}"#,
                    #"{"dst":{"ip":"10.0.0.1"},"payload":""}"#, #"{"dst":{"ip":"2001:db8::1"},"payload":""}"#,
                    #"{"payload":""}"#, #"{"dst":{"pk":"\#(pk)"},"topic":"!","payload":""}"#,
                    #"{"dst":{"pk":"\#(pk)"},"topic":"\#(Base64.encode(Array(repeating: 1, count: 256)))","payload":""}"#] {
            let response = try await api.request(M.POST, "/api/v1/messages", json: bad)
            #expect(response.status == 400, "POST \(bad)")
            #expect(!response.text.isEmpty)
        }
        #expect(try await api.request(M.POST, "/api/v1/messages?reply_timeout=soon", json: "{}").status == 400)
        #expect(try await api.get("/api/v1/messages?peek=maybe").status == 400)
        #expect(try await api.get("/api/v1/messages?timeout=-1").status == 400)
        #expect(try await api.get("/api/v1/messages?topic=%21").status == 400)
        #expect(try await api.get("/api/v1/messages/status/xyz").status == 400)
        #expect(try await api.get("/api/v1/messages/status/0011223344556677").status == 404)
        #expect(try await api.request(M.POST, "/api/v1/messages/reply/123", json: "{}").status == 400)
        #expect(try await api.request(M.DELETE, "/api/v1/messages").status == 405)
        #expect(try await api.request(M.PUT, "/api/v1/messages/topics").status == 405)
        await a.stop()
    }

    @Test("topics: default action, add, sources, forward socket, remove; a refused sender's message never arrives")
    func topics() async throws {
        let (a, b) = try await Self.pair()
        let api = b.client
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/default"))["accept"]?.bool == true)
        #expect(try await api.request(M.PUT, "/api/v1/messages/topics/default", json: #"{"accept":false}"#).status == 204)
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/default"))["accept"]?.bool == false)
        #expect(try await api.request(M.PUT, "/api/v1/messages/topics/default", json: #"{"accept":"no"}"#).status == 400)

        #expect(try await api.request(M.POST, "/api/v1/messages/topics", json: "[116,101,115,116]").status == 201)
        #expect(try await api.request(M.POST, "/api/v1/messages/topics", json: "[300]").status == 400)
        let test = CLIRender.percentEncoded(Base64.encode(Array("test".utf8)))
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics")).array == [.string("dGVzdA==")])
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/\(test)/sources")).array == [])
        #expect(try await api.get("/api/v1/messages/topics/\(CLIRender.percentEncoded("bm9wZQ=="))/sources").status == 404)

        // The topic has no sources: A's message on it is refused (never acknowledged).
        _ = try await a.client.request(M.POST, "/api/v1/messages",
                                       json: Self.sendInfo(pk: b.node.identity.publicKey.hex, topic: "test", payload: [1]))
        #expect(try await api.get("/api/v1/messages?timeout=1").status == 204)
        #expect((await b.node.messageStats()?.stats.refusedTopic ?? 0) > 0)

        let source = a.node.identity.subnet.description
        #expect(try await api.request(M.POST, "/api/v1/messages/topics/\(test)/sources", json: #"{"subnet":"\#(source)"}"#).status == 201)
        #expect(try await api.request(M.POST, "/api/v1/messages/topics/\(test)/sources", json: #"{"subnet":"nope"}"#).status == 400)
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/\(test)/sources")).array == [.string(source)])
        _ = try await a.client.request(M.POST, "/api/v1/messages",
                                       json: Self.sendInfo(pk: b.node.identity.publicKey.hex, topic: "test", payload: [2]))
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages?timeout=5"))["payload"]?.string == Base64.encode([2]))

        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/\(test)/forward")) == .null)
        #expect(try await api.request(M.PUT, "/api/v1/messages/topics/\(test)/forward", json: #"{"socketPath":"/run/x.sock"}"#).status == 204)
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/\(test)/forward")) == .string("/run/x.sock"))
        #expect(try await api.request(M.DELETE, "/api/v1/messages/topics/\(test)/forward").status == 204)
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/\(test)/forward")) == .null)

        let encodedSource = CLIRender.percentEncoded(source)
        #expect(try await api.request(M.DELETE, "/api/v1/messages/topics/\(test)/sources/\(encodedSource)").status == 204)
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics/\(test)/sources")).array == [])
        #expect(try await api.request(M.DELETE, "/api/v1/messages/topics/\(test)").status == 204)
        #expect(try await api.request(M.DELETE, "/api/v1/messages/topics/%21").status == 400)
        #expect(try APIServerTests.json(try await api.get("/api/v1/messages/topics")).array == [])
        await b.stop()
        await a.stop()
    }
}

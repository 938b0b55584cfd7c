import Logging
import MyceliumAPI
import MyceliumCore
import MyceliumNode
import Synchronization
import Testing

/// JSON-RPC 2.0 as jsonrpsee answers it (spec §10): the protocol alone against a fake handler,
/// then Rust's methods and error codes against live nodes through a plain HTTP client.
@Suite(.serialized) struct JSONRPCTests {
    static let echo: JSONRPC.Handler = { method, params throws(JSONRPC.Failure) in
        switch method {
        case "echo": return try params.required(0, "value")
        case "fail": throw JSONRPC.Failure(code: -32019)
        default: throw .methodNotFound(method)
        }
    }

    static func respond(_ body: String) async throws -> JSON? {
        guard let text = await JSONRPC.respond(to: Array(body.utf8), handler: echo) else { return nil }
        return try JSON(parsing: text)
    }

    @Test("every protocol error has its code and jsonrpsee's message; ids are echoed; named and positional params")
    func protocolErrors() async throws {
        let cases: [(String, Int)] = [
            ("{", -32700), ("[]", -32600), ("5", -32600), (#"{"jsonrpc":"1.0","method":"echo","id":1}"#, -32600),
            (#"{"jsonrpc":"2.0","method":7,"id":1}"#, -32600), (#"{"jsonrpc":"2.0","method":"echo","id":{}}"#, -32600),
            (#"{"jsonrpc":"2.0","method":"echo","params":"x","id":1}"#, -32600),
            (#"{"jsonrpc":"2.0","method":"nope","id":1}"#, -32601), (#"{"jsonrpc":"2.0","method":"echo","params":[],"id":1}"#, -32602),
            (#"{"jsonrpc":"2.0","method":"fail","id":1}"#, -32019),
        ]
        let messages = [-32700: "Parse error", -32600: "Invalid request", -32601: "Method not found", -32602: "Invalid params",
                        -32019: "Server error"]
        for (body, code) in cases {
            let answer = try #require(try await Self.respond(body))
            #expect(answer["error"]?["code"]?.int64 == Int64(code), "\(body) → \(answer.compact)")
            #expect(answer["error"]?["message"]?.string == messages[code])
            #expect(answer["jsonrpc"]?.string == "2.0" && answer["result"] == nil)
        }
        let positional = try #require(try await Self.respond(#"{"jsonrpc":"2.0","method":"echo","params":[42],"id":"a"}"#))
        #expect(positional["result"] == .number("42") && positional["id"] == .string("a"))
        let named = try #require(try await Self.respond(#"{"jsonrpc":"2.0","method":"echo","params":{"value":true},"id":7}"#))
        #expect(named["result"] == .bool(true) && named["id"] == .number("7"))
    }

    @Test("a batch answers in order, leaves notifications out, and is bounded")
    func batch() async throws {
        let answer = try #require(try await Self.respond("""
            [{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},
             {"jsonrpc":"2.0","method":"echo","params":[2]},
             {"jsonrpc":"2.0","method":"nope","id":3},
             5,
             {"jsonrpc":"2.0","method":"echo","params":[4],"id":4}]
            """))
        let items = try #require(answer.array)
        #expect(items.count == 4)
        #expect(items[0]["result"] == .number("1") && items[1]["error"]?["code"]?.int64 == -32601)
        #expect(items[2]["error"]?["code"]?.int64 == -32600 && items[3]["id"] == .number("4"))
        #expect(try await Self.respond(#"[{"jsonrpc":"2.0","method":"echo","params":[1]}]"#) == nil, "only notifications: no answer")
        #expect(try await Self.respond(#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#) == nil)
        let tooMany = "[" + Array(repeating: #"{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}"#, count: JSONRPC.maxBatch + 1)
            .joined(separator: ",") + "]"
        #expect(try await Self.respond(tooMany)?["error"]?["code"]?.int64 == -32600)
    }

    /// A node with its JSON-RPC server on an ephemeral port.
    struct RPCNode {
        let running: APIServerTests.Running
        let server: Task<Void, any Error>
        let client: APIClient
        var node: Node { running.node }

        func stop() async {
            server.cancel()
            _ = await server.result
            await running.stop()
        }
    }

    static func start(peers: [Endpoint] = []) async throws -> RPCNode {
        let running = try await APIServerTests.start(peers: peers)
        let bound = Mutex<Int?>(nil)
        let app = APIServer.application(router: RPCMethods.router(node: running.node), address: APIAddress(host: "127.0.0.1", port: 0),
                                        name: "rpc", logger: Logger(label: "rpc")) { port in bound.withLock { $0 = port } }
        let server = Task { try await app.runService() }
        for _ in 0..<100 {
            if let port = bound.withLock({ $0 }) {
                return RPCNode(running: running, server: server, client: APIClient(address: APIAddress(host: "127.0.0.1", port: UInt16(port))))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        server.cancel()
        throw CancellationError()
    }

    static func call(_ client: APIClient, _ method: String, _ params: String = "[]", path: String = "/") async throws -> JSON {
        let response = try await client.request(.POST, path, json: #"{"jsonrpc":"2.0","method":"\#(method)","params":\#(params),"id":1}"#)
        #expect(response.status == 200)
        return try JSON(parsing: response.body)
    }

    @Test("Rust's methods over HTTP: info, peers, routes, pubkey, messages and topics, with each method's error code")
    func methods() async throws {
        let a = try await Self.start()
        let b = try await Self.start(peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(a.node.listenPort!)")])
        let rpcA = a.client, rpcB = b.client
        let info = try await Self.call(rpcA, "getInfo", path: "/rpc")
        #expect(info["result"]?["nodePubkey"]?.string == a.node.identity.publicKey.hex)
        #expect(try await APIServerTests.eventually {
            (try? await Self.call(rpcB, "getSelectedRoutes"))?["result"]?.array?.count == 1
        })
        #expect(try await Self.call(rpcA, "getPeers")["result"]?.array?.count == 1)
        #expect(try await Self.call(rpcB, "getFallbackRoutes")["result"]?.array != nil)
        #expect(try await Self.call(rpcB, "getQueriedSubnets")["result"]?.array != nil)
        #expect(try await Self.call(rpcB, "getPacketStatistics")["result"]?["bySource"] != nil)
        let key = try await Self.call(rpcB, "getPublicKeyFromIp", #"["\#(a.node.identity.address)"]"#)
        #expect(key["result"]?.string == a.node.identity.publicKey.hex)
        #expect(try await Self.call(rpcB, "rpc.discover")["result"]?["methods"]?.array?.count ?? 0 > 20)

        // Messages: A pushes to B, B pops; a reply to a waiting push.
        let send = #"{"dst":{"pk":"\#(b.node.identity.publicKey.hex)"},"topic":"dA==","payload":"aGk="}"#
        let pushed = try await Self.call(rpcA, "pushMessage", "[\(send)]")
        let id = try #require(pushed["result"]?["id"]?.string)
        let popped = try await Self.call(rpcB, "popMessage", #"[false, 5, "dA=="]"#)
        #expect(popped["result"]?["id"]?.string == id && popped["result"]?["payload"]?.string == "aGk=")
        #expect(try await Self.call(rpcB, "popMessage", #"{"timeout":0}"#)["result"] == .null)
        #expect(try await APIServerTests.eventually {
            (try? await Self.call(rpcA, "getMessageInfo", #"["\#(id)"]"#))?["result"]?["state"]?.string == "read"
        })
        let asking = Task { try await Self.call(rpcA, "pushMessage", #"[{"dst":{"pk":"\#(b.node.identity.publicKey.hex)"},"payload":"cQ=="}, 8]"#) }
        let question = try await Self.call(rpcB, "popMessage", "[false, 5]")
        let qid = try #require(question["result"]?["id"]?.string)
        let reply = #"{"dst":{"ip":"\#(a.node.identity.address)"},"payload":"YQ=="}"#
        #expect(try await Self.call(rpcB, "pushMessageReply", #"["\#(qid)", \#(reply)]"#)["result"] == .bool(true))
        #expect(try await asking.value["result"]?["payload"]?.string == "YQ==")

        // Topics.
        #expect(try await Self.call(rpcB, "getDefaultTopicAction")["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "setDefaultTopicAction", "[false]")["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "addTopic", #"["dA=="]"#)["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "getTopics")["result"] == .array([.string("dA==")]))
        #expect(try await Self.call(rpcB, "addTopicSource", #"["dA==", "400::/7"]"#)["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "getTopicSources", #"["dA=="]"#)["result"] == .array([.string("400::/7")]))
        #expect(try await Self.call(rpcB, "removeTopicSource", #"["dA==", "400::/7"]"#)["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "setTopicForwardSocket", #"["dA==", "/run/t.sock"]"#)["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "getTopicForwardSocket", #"["dA=="]"#)["result"] == .string("/run/t.sock"))
        #expect(try await Self.call(rpcB, "removeTopicForwardSocket", #"["dA=="]"#)["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "removeTopic", #"["dA=="]"#)["result"] == .bool(true))

        // The SOCKS5 helper's methods (nothing to find between two loopback nodes).
        #expect(try await Self.call(rpcB, "getProxies")["result"] == .array([]))
        #expect(try await Self.call(rpcB, "startProxyProbe")["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "stopProxyProbe")["result"] == .bool(true))
        #expect(try await Self.call(rpcB, "disconnectProxy")["result"] == .bool(true))

        // Each method's own error code (spec §10).
        let errors: [(String, String, Int)] = [
            ("getPublicKeyFromIp", #"["x"]"#, -32007), ("getPublicKeyFromIp", #"["5ff::1"]"#, -32008),
            ("addPeer", #"["nonsense"]"#, -32009), ("addPeer", #"["tcp://127.0.0.1:\#(a.node.listenPort!)"]"#, -32010),
            ("deletePeer", #"["tcp://127.0.0.1:1"]"#, -32011), ("deletePeer", #"["nonsense"]"#, -32012),
            ("popMessage", #"[false, 0, "!"]"#, -32013),
            ("pushMessage", #"[{"dst":{"ip":"\#(a.node.identity.address)"},"topic":"\#(Base64.encode(Array(repeating: 1, count: 256)))","payload":""}]"#, -32015),
            ("pushMessage", #"[{"dst":{"ip":"10.0.0.1"},"payload":""}]"#, -32602),
            ("pushMessageReply", #"["xyz", {"dst":{"ip":"\#(a.node.identity.address)"},"payload":""}]"#, -32018),
            ("getMessageInfo", #"["0011223344556677"]"#, -32019), ("getMessageInfo", #"["zz"]"#, -32020),
            ("addTopic", #"["!"]"#, -32021), ("getTopicSources", #"["bm9wZQ=="]"#, -32030),
            ("addTopicSource", #"["dA==", "nope"]"#, -32023), ("connectProxy", "[null]", -32032),
            ("connectProxy", #"["nonsense"]"#, -32602), ("getInfo", "[1]", -32602), ("noSuchMethod", "[]", -32601),
        ]
        for (method, params, code) in errors {
            let answer = try await Self.call(rpcB, method, params)
            #expect(answer["error"]?["code"]?.int64 == Int64(code), "\(method) \(params) → \(answer.compact)")
        }
        // A batch over HTTP.
        let batch = try await rpcB.request(.POST, "/", json: #"[{"jsonrpc":"2.0","method":"getInfo","id":1},{"jsonrpc":"2.0","method":"getTopics","id":2}]"#)
        #expect(try JSON(parsing: batch.body).array?.map { $0["id"] } == [.number("1"), .number("2")])
        await b.stop()
        await a.stop()
    }
}

import Foundation
import Testing

/// The message bus (docs/messages.md) between real daemons in network namespaces, driven through
/// the CLI as a user would: a message across a relay and its reply, a topic forwarded to a Unix
/// socket that answers, and a topic whose allow list refuses a sender. Every wait is bounded.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct MessageNamespaceTests {
    static let metricsPort = 9994

    static func cli(_ ns: String, _ args: [String], timeout: TimeInterval = 30) -> (status: Int32, output: String) {
        NamespaceLab.run(["ip", "netns", "exec", ns, NamespaceLab.binary, "message"] + args, timeout: timeout)
    }

    /// A CLI call left running (a sender waiting for its reply); read with `finish`.
    static func start(_ ns: String, _ args: [String]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", ns, NamespaceLab.binary, "message"] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        return (p, pipe)
    }

    static func finish(_ running: (Process, Pipe), within seconds: TimeInterval) -> (status: Int32, output: String) {
        let deadline = Date().addingTimeInterval(seconds)
        while running.0.isRunning, Date() < deadline { usleep(50_000) }
        if running.0.isRunning { NamespaceLab.terminate(running.0) }
        let output = String(decoding: running.1.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (running.0.terminationStatus, output)
    }

    static func publicKey(_ lab: NamespaceLab, _ ns: String) throws -> String {
        let r = NamespaceLab.run([NamespaceLab.binary, "inspect", "--json", "-k", lab.nodes[ns]!.keyFile])
        let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: String]
        return try #require(json?["publicKey"], "\(r.output)")
    }

    static func json(_ line: String) -> [String: Any] {
        let last = line.split(separator: "\n").last.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any] ?? [:]
    }

    @Test("A — B — C (C without a TUN): A's message crosses B sealed, C replies, A's waiting send prints the reply")
    func lineWithReply() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, bFromA) = try lab.link(a, b)
        let (_, cFromB) = try lab.link(b, c)
        let metrics = ["--metrics-api-address", "[::1]:\(Self.metricsPort)"]
        try lab.startNode(c, arguments: metrics + ["--no-tun"])
        try lab.startNode(b, peers: [cFromB], arguments: metrics)
        try lab.startNode(a, peers: [bFromA], arguments: metrics)
        let aKey = try Self.publicKey(lab, a), cKey = try Self.publicKey(lab, c)

        let asking = try Self.start(a, ["send", "--wait", "--timeout", "40", "--topic", "greeting", cKey, "hello C"])
        let received = Self.cli(c, ["receive", "--timeout", "40", "--topic", "greeting"], timeout: 50)
        #expect(received.status == 0, "\(received.output) \(lab.log(of: c))")
        let message = Self.json(received.output)
        #expect(message["payload"] as? String == "hello C" && message["topic"] as? String == "greeting", "\(received.output)")
        #expect(message["srcPk"] as? String == aKey)
        let id = try #require(message["id"] as? String)
        let replied = Self.cli(c, ["send", "--reply-to", id, aKey, "hello A"])
        #expect(replied.status == 0, "\(replied.output)")
        let answer = Self.finish(asking, within: 40)
        #expect(answer.status == 0, "\(answer.output)")
        let reply = Self.json(answer.output)
        #expect(reply["payload"] as? String == "hello A" && reply["id"] as? String == id, "\(answer.output)")
        #expect(reply["srcPk"] as? String == cKey)

        func m(_ ns: String, _ name: String) -> Double { lab.metrics(of: ns, port: Self.metricsPort)[name] ?? 0 }
        #expect(m(c, "mycelium_messages{event=\"received\"}") == 1 && m(a, "mycelium_messages{event=\"received\"}") == 1)
        #expect(m(a, "mycelium_messages{event=\"delivered\"}") == 1)
        #expect(m(b, "mycelium_messages{event=\"received\"}") == 0 && m(b, "mycelium_router_packets_routed{verdict=\"local\"}") == 0,
                "the relay carried sealed packets only")

        // A binary payload through a file, and nothing left behind.
        let file = lab.directory + "/payload.bin"
        let bytes = Data((0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(Self.cli(a, ["send", "--msg-path", file, cKey]).status == 0)
        let out = lab.directory + "/received.bin"
        let got = Self.cli(c, ["receive", "--timeout", "30", "--msg-path", out], timeout: 40)
        #expect(got.status == 0, "\(got.output)")
        #expect((try? Data(contentsOf: URL(fileURLWithPath: out))) == bytes)
        #expect(Self.cli(c, ["receive", "--timeout", "1"], timeout: 10).status == 3, "exit status 3: nothing came")
    }

    @Test("a topic forwarded to a Unix socket answers the sender; a topic's allow list refuses A and admits B")
    func topicsAndForwardSocket() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, cFromA) = try lab.link(a, c)
        let (_, cFromB) = try lab.link(b, c)
        let socket = lab.directory + "/echo.sock"
        // Answers each connection with "echo:" + what it read, then closes (Rust's exchange).
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", """
            import socket, os
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind("\(socket)"); s.listen(4); s.settimeout(60)
            conn, _ = s.accept(); conn.settimeout(10)
            data = conn.recv(65536)
            conn.sendall(b"echo:" + data); conn.close()
            """]
        try listener.run()
        defer { NamespaceLab.terminate(listener) }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(50_000) }

        try lab.startNode(b, peers: [cFromB])
        try lab.startNode(a, peers: [cFromA])
        let bInfo = NamespaceLab.run([NamespaceLab.binary, "inspect", "--json", "-k", lab.nodes[b]!.keyFile]).output
        let subnetB = try #require((try JSONSerialization.jsonObject(with: Data(bInfo.utf8)) as? [String: String])?["subnet"])
        let topics = lab.directory + "/topics.toml"
        try """
            "echo" = { subnets = ["400::/7"], forward_socket = "\(socket)" }
            [private]
            subnets = ["\(subnetB)"]
            """.write(toFile: topics, atomically: true, encoding: .utf8)
        try lab.startNode(c, arguments: ["--topic-config", topics, "--metrics-api-address", "[::1]:\(Self.metricsPort)"])
        let cKey = try Self.publicKey(lab, c)

        let echoed = Self.cli(a, ["send", "--wait", "--timeout", "40", "--topic", "echo", cKey, "ping"], timeout: 50)
        #expect(echoed.status == 0, "\(echoed.output) \(lab.log(of: c))")
        #expect(Self.json(echoed.output)["payload"] as? String == "echo:ping", "\(echoed.output)")

        let refused = Self.cli(a, ["send", "--topic", "private", cKey, "from A"])
        #expect(refused.status == 0)
        let admitted = Self.cli(b, ["send", "--topic", "private", cKey, "from B"])
        #expect(admitted.status == 0)
        let got = Self.cli(c, ["receive", "--timeout", "30", "--topic", "private"], timeout: 40)
        #expect(Self.json(got.output)["payload"] as? String == "from B", "\(got.output)")
        #expect(Self.cli(c, ["receive", "--timeout", "3", "--topic", "private"], timeout: 10).status == 3, "A's message never arrives")
        let refusedCount = lab.metrics(of: c, port: Self.metricsPort)["mycelium_messages_refused{reason=\"topic\"}"] ?? 0
        #expect(refusedCount >= 1)
        #expect(lab.metrics(of: c, port: Self.metricsPort)["mycelium_messages{event=\"forwarded\"}"] == 1)
    }
}

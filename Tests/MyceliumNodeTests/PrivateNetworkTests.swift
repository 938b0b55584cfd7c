import Foundation
import MyceliumCore
import MyceliumNode
import MyceliumRouting
import MyceliumTesting
import NIOCore
import NIOPosix
import Testing

/// Private networks (spec §3.5) on loopback: our nodes with each other, and with OpenSSL's own
/// `s_client` / `s_server`, a TLS 1.3 PSK implementation we did not write (the same legacy PSK
/// callback mode Rust's mycelium-private uses).
@Suite(.serialized) struct PrivateNetworkTests {
    static let name = "test-network"
    static let key = (0..<32).map { UInt8($0 * 7 &+ 3) }
    static var keyHex: String { key.map { String(format: "%02x", $0) }.joined() }

    static func context(name: String = name, key: [UInt8] = key) throws -> TLSPSKContext {
        try TLSPSKContext(network: try PrivateNetwork(name: name, key: key))
    }

    @Test("names must be 2 to 64 bytes and keys 32 bytes")
    func validation() {
        #expect(throws: PrivateNetwork.Invalid.nameLength(1)) { try PrivateNetwork(name: "x", key: Self.key) }
        #expect(throws: PrivateNetwork.Invalid.nameLength(65)) { try PrivateNetwork(name: String(repeating: "n", count: 65), key: Self.key) }
        #expect(throws: PrivateNetwork.Invalid.keyLength(31)) { try PrivateNetwork(name: "net", key: Array(Self.key.prefix(31))) }
        #expect((try? PrivateNetwork(name: String(repeating: "ü", count: 32), key: Self.key)) != nil)  // 64 bytes
    }

    @Test("two nodes of one network peer over TLS; a node with another key or name never becomes a neighbour")
    func peering() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let network = try Self.context()
        let a = try await PeeringTests.makeNode(group, seed: 11, network: network)
        let b = try await PeeringTests.makeNode(group, seed: 12, peers: [try Endpoint(parsing: "tls://[::1]:\(a.port)")], network: network)
        let subnetB = try await b.service.loop.submit { b.subnet }.get()
        #expect(try await PeeringTests.eventually(a) { $0.nextHop(for: subnetB) != nil })
        #expect(await b.peers.peers().map(\.state) == [.alive])
        #expect(await a.peers.peers().map(\.endpoint.proto) == [.tls], "inbound peers of a private network are tls://")

        let wrongKey = try await PeeringTests.makeNode(group, seed: 13, peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)")],
                                                       network: try Self.context(key: Self.key.reversed()), redialMs: 200)
        let wrongName = try await PeeringTests.makeNode(group, seed: 14, peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(a.port)")],
                                                        network: try Self.context(name: "other-network"), redialMs: 200)
        let plain = try await PeeringTests.makeNode(group, seed: 15, peers: [try Endpoint(parsing: "tcp://[::1]:\(a.port)")], redialMs: 200)
        try await Task.sleep(for: .seconds(2))  // ~10 attempts each
        for outsider in [wrongKey, wrongName, plain] {
            let subnetA = try await a.service.loop.submit { a.subnet }.get()
            #expect(try await outsider.service.loop.submit { outsider.service.inspect { $0.nextHop(for: subnetA) } }.get() == nil)
        }
        for outsider in [wrongKey, wrongName] {
            #expect(try await outsider.service.loop.submit { outsider.service.peerCount }.get() == 0)
            #expect(await outsider.peers.peers().allSatisfy { $0.state != .alive && $0.rxBytes == 0 },
                    "not a single overlay byte from the network")
        }
        #expect(try await a.service.loop.submit { a.service.peerCount }.get() == 1, "only B is A's neighbour")
        for node in [plain, wrongName, wrongKey, b, a] { await node.peers.shutdown() }
        try await group.shutdownGracefully()
    }

    @Test("tls:// peers are refused outside a private network")
    func tlsNeedsNetwork() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await PeeringTests.makeNode(group, seed: 16)
        await #expect(throws: PeerManager.AddError.unsupportedProtocol(.tls)) {
            try await a.peers.add(try Endpoint(parsing: "tls://[::1]:9651"))
        }
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    // MARK: interop with OpenSSL's command-line client and server

    /// Runs a shell line with a time limit; returns (status, stdout bytes, stderr text).
    static func shell(_ line: String, timeout: TimeInterval) throws -> (Int32, [UInt8], String) {
        let dir = NSTemporaryDirectory() + "tlspsk-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let status = Shell.run(["sh", "-c", "\(line) >\(dir)/out 2>\(dir)/err"], timeout: timeout).status
        let out = (try? Data(contentsOf: URL(fileURLWithPath: dir + "/out"))).map { [UInt8]($0) } ?? []
        let err = (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? ""
        return (status, out, err)
    }

    /// The first Mycelium packet in `bytes`, if they start with a well-formed frame.
    static func firstPacket(_ bytes: [UInt8]) -> Packet? {
        var decoder = FrameDecoder()
        decoder.append(bytes)
        if case let .packet(packet)? = try? decoder.next() { return packet }
        return nil
    }

    @Test("openssl s_client completes a TLS 1.3 PSK handshake with our node and receives a Mycelium frame",
          arguments: ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"])
    func sClient(suite: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await PeeringTests.makeNode(group, seed: 21, network: try Self.context())
        // stdin stays open for 2 s, long enough for the node's first Hello and Update.
        let (_, out, err) = try Self.shell("sleep 2 | timeout -s KILL 3 openssl s_client -connect 127.0.0.1:\(a.port) -tls1_3 -ciphersuites \(suite) "
            + "-psk \(Self.keyHex) -psk_identity \(Self.name) -quiet", timeout: 8)
        guard case .control? = Self.firstPacket(out) else {
            Issue.record("no Mycelium control packet over TLS: \(out.count) bytes, stderr: \(err)")
            await a.peers.shutdown()
            return
        }
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("openssl s_client with a wrong key or name is refused and receives nothing", arguments: [
        ("wrong key", String(repeating: "ab", count: 32), name), ("wrong name", keyHex, "other-network"),
    ])
    func sClientRefused(label: String, keyHex: String, identity: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await PeeringTests.makeNode(group, seed: 22, network: try Self.context())
        let (_, out, err) = try Self.shell("sleep 2 | timeout -s KILL 5 openssl s_client -connect 127.0.0.1:\(a.port) -tls1_3 "
            + "-psk \(keyHex) -psk_identity \(identity) -quiet", timeout: 8)
        #expect(out.isEmpty, "\(label): \(out.count) bytes received")
        #expect(err.contains("alert"), "\(label): the handshake fails with an alert: \(err)")
        #expect(try await a.service.loop.submit { a.service.peerCount }.get() == 0)
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(fd, raw, length) == 0, getsockname(fd, raw, &length) == 0 else { throw LabError("no free port") }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test("our node dialling openssl s_server completes the handshake and sends a Mycelium frame; a wrong key or name fails",
          arguments: [("right", keyHex, name, true), ("wrong key", String(repeating: "cd", count: 32), name, false),
                      ("wrong name", keyHex, "other-network", false)])
    func sServer(label: String, keyHex: String, identity: String, succeeds: Bool) async throws {
        let port = try Self.freePort()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = Task.detached {
            // 8 s: a busy test run can delay the node's start by seconds.
            try Self.shell("sleep 8 | timeout -s KILL 8 openssl s_server -accept 127.0.0.1:\(port) -tls1_3 -nocert "
                + "-psk \(keyHex) -psk_identity \(identity) -quiet", timeout: 12)
        }
        try await Task.sleep(for: .milliseconds(300))
        let a = try await PeeringTests.makeNode(group, seed: 23, peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(port)")],
                                                network: try Self.context(), redialMs: 300)
        let (_, out, err) = try await server.value
        let peers = await a.peers.peers()
        if succeeds {
            #expect(Self.firstPacket(out) != nil, "\(label): s_server got \(out.count) bytes; \(err)")
        } else {
            #expect(out.isEmpty, "\(label): s_server got \(out.count) bytes")
            #expect(peers.allSatisfy { $0.state != .alive }, "\(label)")
        }
        await a.peers.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("closing a peer sends close_notify: openssl s_server sees a clean TLS shutdown")
    func closeNotify() async throws {
        let port = try Self.freePort()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = Task.detached {
            try Self.shell("sleep 4 | timeout -s KILL 4 openssl s_server -accept 127.0.0.1:\(port) -tls1_3 -nocert "
                + "-psk \(Self.keyHex) -psk_identity \(Self.name)", timeout: 8)
        }
        try await Task.sleep(for: .milliseconds(300))
        let a = try await PeeringTests.makeNode(group, seed: 24, peers: [try Endpoint(parsing: "tcp://127.0.0.1:\(port)")],
                                                network: try Self.context(), redialMs: 200)
        for _ in 0..<40 where await a.peers.peers().first?.state != .alive { try await Task.sleep(for: .milliseconds(50)) }
        #expect(await a.peers.peers().first?.state == .alive)
        await a.peers.shutdown()
        let (_, out, err) = try await server.value
        // s_server prints DONE when the client's close_notify arrives (an abrupt close is an error).
        #expect(String(decoding: out, as: UTF8.self).contains("DONE"), "\(err)")
        try await group.shutdownGracefully()
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import Testing

/// TUN offloads against the real kernel: a TCP stream over the overlay between two namespaces
/// arrives byte for byte, whether both nodes use offloads or only one does (the wire is the
/// same either way). With offloads on, the sender's kernel handed its node super-packets (split
/// counted) and the receiver's node wrote coalesced ones the kernel accepted: had a split or a
/// coalesced checksum been wrong, the kernel would have dropped those segments and the stream
/// would not complete. Nothing is timed.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct OffloadTransferTests {
    static let metricsPort = 9993
    static let bytes = 8 << 20
    static let port = 5201

    /// Receives one connection on `address`:`port` and prints the SHA-256 and length of what came.
    static let server = """
        import hashlib, socket, sys
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(30)
        c, _ = s.accept(); c.settimeout(30)
        h = hashlib.sha256(); n = 0
        while True:
            b = c.recv(1 << 16)
            if not b: break
            h.update(b); n += len(b)
        print(h.hexdigest(), n)
        """

    /// Sends `count` seeded pseudo-random bytes and prints their SHA-256 and length.
    static let client = """
        import hashlib, random, socket, sys, time
        data = random.Random(14).randbytes(int(sys.argv[3]))
        for _ in range(50):
            try:
                c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30); break
            except OSError: time.sleep(0.2)
        c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1)
        print(hashlib.sha256(data).hexdigest(), len(data))
        """

    @Test("a TCP stream arrives intact through offloading nodes, and between an offloading and a plain one",
          arguments: [(true, true), (true, false), (false, true)])
    func transfer(senderOffload: Bool, receiverOffload: Bool) throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, bFromA) = try lab.link(a, b)
        func options(_ on: Bool) -> [String] { ["--metrics-api-address", "[::1]:\(Self.metricsPort)", "--tun-offload", on ? "true" : "false"] }
        try lab.startNode(b, arguments: options(receiverOffload))
        try lab.startNode(a, peers: [bFromA], arguments: options(senderOffload))
        let bAddress = try lab.address(of: b)
        try #require(lab.ping(from: a, to: bAddress, within: 20), "A cannot reach B: \(lab.log(of: a))")

        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["ip", "netns", "exec", b, "python3", "-c", Self.server, bAddress, "\(Self.port)"]
        let serverOut = Pipe()
        server.standardOutput = serverOut
        try server.run()
        defer { NamespaceLab.terminate(server) }
        let sent = NamespaceLab.run(["ip", "netns", "exec", a, "python3", "-c", Self.client, bAddress, "\(Self.port)", "\(Self.bytes)"],
                                    timeout: 60)
        for _ in 0..<300 where server.isRunning { usleep(100_000) }
        NamespaceLab.terminate(server)
        let received = String(decoding: serverOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(sent.status == 0, "sender failed: \(sent.output)")
        let sentDigest = sent.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sentDigest.hasSuffix(" \(Self.bytes)"), "sender: \(sent.output)")
        #expect(received.trimmingCharacters(in: .whitespacesAndNewlines) == sentDigest, "received \(received), sent \(sentDigest)")

        let metricsA = lab.metrics(of: a, port: Self.metricsPort), metricsB = lab.metrics(of: b, port: Self.metricsPort)
        let split = metricsA["mycelium_datapath_offload{event=\"split\"}"] ?? 0
        let coalesced = metricsB["mycelium_datapath_offload{event=\"coalesced\"}"] ?? 0
        if senderOffload { #expect(split > 0, "A's kernel handed it no super-packets") } else { #expect(split == 0) }
        if receiverOffload { #expect(coalesced > 0, "B wrote no coalesced super-packets") } else { #expect(coalesced == 0) }
        for (name, m) in [("A", metricsA), ("B", metricsB)] {
            #expect((m["mycelium_datapath_dropped{reason=\"malformed\"}"] ?? 0) == 0, "\(name) dropped malformed packets")
            #expect((m["mycelium_datapath_decrypt_failures"] ?? 0) == 0, "\(name) failed to open packets")
        }
    }
}

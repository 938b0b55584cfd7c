import Foundation
import Testing

/// The SOCKS5 helper (spec §13) between real daemons, through the CLI: A probes the node it has
/// a route to, finds the SOCKS5 server on C, relays its local port 1080 to it, and a client on A
/// talks to C's server through the overlay.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct ProxyNamespaceTests {
    static func cli(_ ns: String, _ args: [String]) -> (status: Int32, output: String) {
        NamespaceLab.run(["ip", "netns", "exec", ns, NamespaceLab.binary, "proxy"] + args, timeout: 30)
    }

    @Test("probe finds C's SOCKS5 server; connect relays [::]:1080 on A to it; disconnect stops")
    func probeAndRelay() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), c = try lab.host("c")
        let (_, cFromA) = try lab.link(a, c)
        try lab.startNode(c)
        try lab.startNode(a, peers: [cFromA])
        let cAddress = try lab.address(of: c)
        try #require(lab.ping(from: a, to: cAddress, within: 20), "A cannot reach C: \(lab.log(of: a))")

        // A minimal SOCKS5 server on C: answers the greeting with "no authentication", then echoes.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["ip", "netns", "exec", c, "python3", "-c", """
            import socket, threading
            s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", 1080)); s.listen(8); s.settimeout(60)
            def serve(conn):
                conn.settimeout(10)
                try:
                    if conn.recv(3) == b"\\x05\\x01\\x00":
                        conn.sendall(b"\\x05\\x00")
                        while True:
                            d = conn.recv(4096)
                            if not d: break
                            conn.sendall(d)
                except OSError: pass
                conn.close()
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """]
        try server.run()
        defer { NamespaceLab.terminate(server) }
        usleep(500_000)

        #expect(Self.cli(a, ["probe", "start"]).status == 0)
        var listed = ""
        for _ in 0..<40 {
            listed = Self.cli(a, ["list"]).output
            if listed.contains(cAddress) { break }
            usleep(250_000)
        }
        #expect(listed.contains(cAddress), "\(listed)")
        let connected = Self.cli(a, ["connect"])
        #expect(connected.status == 0 && connected.output.contains("[\(cAddress)]:1080"), "\(connected.output) \(lab.log(of: a))")

        let client = NamespaceLab.run(["ip", "netns", "exec", a, "python3", "-c", """
            import socket
            s = socket.create_connection(("::1", 1080), timeout=10)
            s.sendall(b"\\x05\\x01\\x00"); assert s.recv(2) == b"\\x05\\x00"
            s.sendall(b"through the overlay"); print(s.recv(100).decode())
            """])
        #expect(client.status == 0 && client.output.contains("through the overlay"), "\(client.output)")

        #expect(Self.cli(a, ["disconnect"]).status == 0)
        let refused = NamespaceLab.run(["ip", "netns", "exec", a, "python3", "-c",
                                        "import socket; socket.create_connection(('::1', 1080), timeout=5)"])
        #expect(refused.status != 0, "nothing listens on 1080 after disconnect")
        #expect(Self.cli(a, ["probe", "stop"]).status == 0)
        let wrong = Self.cli(a, ["connect", "--remote", "nonsense"])
        #expect(wrong.status != 0)
    }
}

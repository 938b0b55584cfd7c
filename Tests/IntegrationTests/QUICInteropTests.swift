import Foundation
import Testing

/// Our QUIC against an independent implementation: aioquic (PyPI), relaying between two of our
/// nodes (Tests/interop/quic_relay.py). Node A dials the relay, where aioquic is the server;
/// the relay dials node B, where aioquic is the client. A reaching B proves both handshakes,
/// the control stream both ways and DATAGRAM frames both ways, all parsed by aioquic.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct QUICInteropTests {
    static let relayScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("interop/quic_relay.py").path

    @Test("A and B peer through an aioquic relay: handshakes as server and client, the stream and datagrams both ways")
    func throughAioquic() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), r = try lab.host("r"), b = try lab.host("b")
        let (_, relayFromA) = try lab.link(a, r)
        let (_, bFromRelay) = try lab.link(r, b)
        try lab.startNode(b)

        let stats = "\(lab.directory)/relay.json"
        let relay = Process()
        relay.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        relay.arguments = ["ip", "netns", "exec", r, "python3", Self.relayScript, "--listen", relayFromA, "--upstream", bFromRelay,
                           "--stats", stats, "--workdir", lab.directory, "--seconds", "120"]
        let relayLog = "\(lab.directory)/relay.log"
        _ = FileManager.default.createFile(atPath: relayLog, contents: nil)
        relay.standardOutput = FileHandle(forWritingAtPath: relayLog)
        relay.standardError = FileHandle(forWritingAtPath: relayLog)
        try relay.run()
        defer { NamespaceLab.terminate(relay) }
        let ready = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: stats + ".ready"), relay.isRunning, Date() < ready { usleep(50_000) }
        let log = { (try? String(contentsOfFile: relayLog, encoding: .utf8)) ?? "" }
        try #require(FileManager.default.fileExists(atPath: stats + ".ready"), "the relay did not start (is aioquic installed?): \(log())")

        try lab.startNode(a, arguments: ["--peers", "quic://[\(relayFromA)]:9651"])
        let target = try lab.address(of: b)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach B through aioquic: \(lab.log(of: a))\n\(log())")
        let big = NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "3", "-s", "1352", "-W", "2", target])
        #expect(big.output.contains("3 received"), "full-size pings: \(big.output)")

        NamespaceLab.terminate(relay)
        let written = try? Data(contentsOf: URL(fileURLWithPath: stats))
        let json = try #require(written.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Int] },
                                "the relay wrote no counts (exit \(relay.terminationStatus), \(relay.terminationReason == .uncaughtSignal ? "signal" : "exit")): \(log())")
        #expect(json["server_handshakes"] ?? 0 >= 1 && json["client_handshakes"] ?? 0 >= 1, "\(json)")
        #expect(json["stream_bytes_a_to_b"] ?? 0 > 0 && json["stream_bytes_b_to_a"] ?? 0 > 0, "\(json)")
        // Every ping and reply crossed as a DATAGRAM holding one data packet, the full-size ones too.
        #expect(json["datagrams_a_to_b"] ?? 0 >= 4 && json["datagrams_b_to_a"] ?? 0 >= 4, "\(json)")
        #expect(json["bad_datagrams"] == 0 && json["data_datagrams"] ?? 0 >= 8, "\(json)")
        #expect(json["max_datagram"] ?? 0 >= 1472, "largest datagram: \(json)")
    }
}

import ArgumentParser
import CMyceliumShims
import Foundation
import MyceliumCore
import MyceliumCrypto
import MyceliumDatapath
import MyceliumRouting
import MyceliumTesting

/// `mycelium-bench sessions`: what sessions cost, in-process and single-threaded (no network):
/// handshake time, the datapath's cost per packet with sessions and with the static scheme,
/// and the memory of the replay state and of session state at 1000 peers.
struct SessionsBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessions",
                                                    abstract: "Handshake time, per-packet cost and replay-state memory of sessions.")

    @Option(help: "Handshakes to time.")
    var handshakes = 500

    @Option(help: "Packets (1400-byte IPv6) carried per datapath measurement.")
    var packets = 100_000

    @Option(help: "Senders (peers) for the memory measurements.")
    var senders = 1000

    func run() throws {
        handshakeTime()
        keyProofTime()
        packetCost()
        replayMemory()
        sessionMemory()
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Heap bytes in use (glibc).
    static func heapBytes() -> Int { Int(cmyc_heap_in_use()) }

    /// A pinned peer's key proof (docs/security.md): the dialler's challenge (a fresh X25519 key),
    /// the answer (one X25519), the check (one X25519), with a 32-byte channel binding.
    func keyProofTime() {
        let peer = SecretKey.generate(), peerKey = peer.publicKey
        let binding = [UInt8](repeating: 7, count: KeyProof.bindingLength)
        var verified = 0
        let t = Self.seconds {
            for _ in 0..<handshakes {
                let challenge = KeyProof.Challenge(pinning: peer.publicKey)
                guard let proof = KeyProof.answer(challenge.frame, secret: peer, publicKey: peerKey, binding: binding) else { continue }
                if (try? challenge.verify(proof, binding: binding)) != nil { verified += 1 }
            }
        }
        print(String(format: "key proof: %.0f µs per pinned connection, both sides on one core (%d of %d verified)",
                     t / Double(handshakes) * 1e6, verified, handshakes))
    }

    /// One complete handshake between two session tables: Init, Response, Confirm (both sides'
    /// X25519, HKDF and cipher set-up; the static seal of the two messages is not included).
    func handshakeTime() {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var out: [SessionTable.Outgoing] = []
        let now = Instant(milliseconds: 1_000)
        var established = 0
        let t = Self.seconds {
            for i in 0..<handshakes {
                var ta = SessionTable(identity: a, wallClockOffsetMs: Int64(i), now: now)
                var tb = SessionTable(identity: b, wallClockOffsetMs: 0, now: now)
                out.removeAll()
                _ = ta.sealing(for: b.publicKey, now: now, into: &out)
                guard case let .handshake(_, _, initMessage)? = out.first else { continue }
                out.removeAll()
                tb.receivedInit(initMessage, from: a.publicKey, now: now, into: &out)
                guard case let .handshake(_, _, response)? = out.first else { continue }
                out.removeAll()
                ta.receivedResponse(response, from: b.publicKey, now: now, into: &out)
                if ta.hasSession(with: b.publicKey) { established += 1 }
            }
        }
        print(String(format: "handshake: %.0f µs per complete handshake, both sides on one core (%d of %d established)",
                     t / Double(handshakes) * 1e6, established, handshakes))
    }

    /// Two cores in a lab: seal at A, carry, open at B, write to B's TUN; per packet, both cores.
    func packetCost() {
        for (label, options) in [("static", SessionOptions(enabled: false)), ("sessions", SessionOptions())] {
            let lab = DatapathLab(count: 2, sessions: [options])
            lab.line()
            lab.installShortestPaths(expiresIn: 3_600_000)
            let a = lab.nodes[0].identity, b = lab.nodes[1].identity
            let packet = TestPackets.echoRequest(from: a.address, to: b.address, payload: 1400 - 48)
            // Warm up (the handshake happens here with sessions on).
            lab.fromTun(0, packet)
            lab.run()
            let n = packets
            let t = Self.seconds {
                for _ in 0..<n {
                    lab.fromTun(0, packet)
                    lab.run()
                    if lab.nodes[1].tun.written.count > 1024 { lab.clearTun(1) }
                }
            }
            print(String(format: "datapath %-8@ %.2f µs per 1400-byte packet (seal + route + open + checks, both cores), %.2f Gbit/s of one core",
                         label as NSString, t / Double(n) * 1e6, Double(n) * 1400 * 8 / t / 1e9))
        }
    }

    /// The static scheme's replay filter with `senders` senders: few nonces each, then full.
    func replayMemory() {
        for perSender in [10, 2 * NonceFilter.Limits.standard.perGeneration] {
            let before = Self.heapBytes()
            var filter = NonceFilter()
            var random = SeededRandom(seed: 7)
            for s in 0..<senders {
                let key = PublicKey(bytes: [UInt8(truncatingIfNeeded: s >> 8), UInt8(truncatingIfNeeded: s)] + [UInt8](repeating: 5, count: 30))!
                for _ in 0..<perSender { filter.record(random.next(), from: key, now: Instant(milliseconds: 0)) }
            }
            let bytes = Self.heapBytes() - before
            print(String(format: "replay filter: %d senders × %d nonces: %.1f MiB (%.0f bytes per sender, %d fingerprints)",
                         filter.senderCount, perSender, Double(bytes) / 1_048_576, Double(bytes) / Double(senders),
                         filter.fingerprintCount))
        }
    }

    /// Session state for `senders` peers, each with one established session.
    func sessionMemory() {
        let me = DatapathLab.identity(seed: 1)
        let now = Instant(milliseconds: 1_000)
        let peers = (0..<senders).map { DatapathLab.identity(seed: UInt64(100 + $0)) }
        let before = Self.heapBytes()
        var table = SessionTable(identity: me, wallClockOffsetMs: 0, now: now)
        var out: [SessionTable.Outgoing] = []
        var t = now
        for peer in peers {
            t = t + 10  // stay inside the handshake budget
            var theirs = SessionTable(identity: peer, wallClockOffsetMs: 0, now: t)
            out.removeAll()
            _ = theirs.sealing(for: me.publicKey, now: t, into: &out)
            guard case let .handshake(_, _, initMessage)? = out.first else { continue }
            out.removeAll()
            table.receivedInit(initMessage, from: peer.publicKey, now: t, into: &out)
        }
        let bytes = Self.heapBytes() - before
        print(String(format: "session state: %d peers with a session: %.1f MiB (%.0f bytes per peer)",
                     senders, Double(bytes) / 1_048_576, Double(bytes) / Double(senders)))
    }
}

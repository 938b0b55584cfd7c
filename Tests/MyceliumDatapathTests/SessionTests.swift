import MyceliumCore
import MyceliumCrypto
import MyceliumDatapath
import MyceliumRouting
import MyceliumTesting
import Testing

/// Sessions (docs/sessions.md) between cores in `DatapathLab`: handshake, data under session
/// keys, replays, lost/duplicated/crossed messages, rekeying, restarts, and Rust-like peers.
@Suite struct SessionTests {
    static let on = SessionOptions()
    static let rustLike = SessionOptions(enabled: false)

    /// A lab of `count` nodes in a line with routes installed.
    static func lab(_ count: Int = 2, sessions: [SessionOptions] = [on]) -> DatapathLab {
        let lab = DatapathLab(count: count, sessions: sessions)
        lab.line()
        lab.installShortestPaths(expiresIn: 3_600_000)
        return lab
    }

    /// Node `from` pings node `to`; true when `to`'s TUN got it.
    @discardableResult
    static func ping(_ lab: DatapathLab, _ from: Int, _ to: Int, _ seq: UInt16 = 1) -> Bool {
        let before = lab.nodes[to].tun.written.count
        lab.fromTun(from, TestPackets.echoRequest(from: lab.nodes[from].identity.address, to: lab.nodes[to].identity.address,
                                                   sequence: seq))
        lab.run()
        return lab.nodes[to].tun.written.count == before + 1
    }

    static func sessionUp(_ lab: DatapathLab, _ a: Int, _ b: Int) -> Bool {
        lab.nodes[a].core.sessions?.hasSession(with: lab.nodes[b].identity.publicKey) == true
    }

    @Test("the first packet goes at once (static) and starts a handshake; both ends then have a session")
    func handshake() throws {
        let lab = Self.lab()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address))
        #expect(lab.pending.count == 2)
        #expect(lab.staticType(lab.pending[0], between: 0, and: 1) == .ipv6)
        #expect(lab.staticType(lab.pending[1], between: 0, and: 1) == .sessionInit)
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 1, "no wait for the handshake")
        #expect(Self.sessionUp(lab, 0, 1) && Self.sessionUp(lab, 1, 0))
        #expect(lab.nodes[0].core.report.sessions.established == 1 && lab.nodes[1].core.report.sessions.established == 1)
        // Data now travels under the session: not static-sealed, and delivered.
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address, sequence: 2))
        let sealed = try #require(lab.pending.first)
        #expect(lab.staticType(sealed, between: 0, and: 1) == nil)
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 2)
        #expect(Self.ping(lab, 1, 0, 3))
        #expect(lab.staticType(lab.carried.last!.packet, between: 1, and: 0) == nil)
        #expect(lab.nodes[0].core.report.sessionsUp == 1)
    }

    @Test("an authentic session packet with an unknown user-header type is malformed, not a decryption failure")
    func unknownTypeInSession() throws {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        var outgoing: [SessionTable.Outgoing] = []
        // A copy of A's table shares its sessions (objects): the counter taken here is used up.
        var table = try #require(lab.nodes[0].core.sessions)
        guard case let .session(cipher, index, counter) = table.sealing(for: b.publicKey, now: lab.now, into: &outgoing) else {
            Issue.record("no session after a ping")
            return
        }
        // index ‖ counter, big-endian: the session nonce (docs/sessions.md).
        var nonce: [UInt8] = []
        for shift in stride(from: 24, through: 0, by: -8) { nonce.append(UInt8(truncatingIfNeeded: index >> UInt32(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { nonce.append(UInt8(truncatingIfNeeded: counter >> UInt64(shift))) }
        let sealed = cipher.seal([1, 9, 0, 0, 42], nonce: nonce)
        let before = lab.nodes[1].core.report
        lab.inject(1, DataPacket(hopLimit: 60, source: a.address, destination: b.address, payload: sealed))
        lab.run()
        let after = lab.nodes[1].core.report
        #expect(after.droppedMalformed == before.droppedMalformed + 1)
        #expect(after.decryptFailures == before.decryptFailures)
        #expect(after.sessions.initsSent == before.sessions.initsSent, "no probe, no new handshake")
        #expect(Self.ping(lab, 0, 1, 2), "the session still carries data")
    }

    @Test("a captured session packet is delivered once; replayed ones are dropped and counted")
    func sessionReplay() throws {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        #expect(Self.ping(lab, 0, 1, 2))
        let captured = lab.carried.last!.packet
        for _ in 0..<3 { lab.inject(1, captured) }
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 2)
        #expect(lab.nodes[1].core.report.sessions.replays == 3)
    }

    @Test("static data from a peer we have a session with is refused (no downgrade)")
    func downgrade() throws {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        let key = try #require(a.secretKey.sharedSecret(with: b.publicKey))
        let forged = PacketCipher(key: key).seal(UserHeader(type: .ipv6), TestPackets.echoRequest(from: a.address, to: b.address, hopLimit: 9))
        lab.inject(1, DataPacket(hopLimit: 60, source: a.address, destination: b.address, payload: forged))
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 1)
        #expect(lab.nodes[1].core.stats.downgradesRefused == 1)
    }

    @Test("a lost Init or Response is retried; data flows static meanwhile", arguments: [UserHeader.PayloadType.sessionInit, .sessionResponse])
    func lost(_ type: UserHeader.PayloadType) {
        let lab = Self.lab()
        var dropped = 0
        lab.drop = { to, packet in
            guard dropped == 0, lab.staticType(packet, between: 0, and: 1) == type else { return false }
            dropped += 1
            return true
        }
        #expect(Self.ping(lab, 0, 1))
        #expect(dropped == 1 && !Self.sessionUp(lab, 0, 1))
        if type == .sessionInit {
            #expect(Self.ping(lab, 0, 1, 2), "static while the handshake is retried: B never heard of sessions from A")
        } else {
            // B answered, so it knows A speaks sessions: A's static packets are refused there.
            #expect(!Self.ping(lab, 0, 1, 2) && lab.nodes[1].core.stats.downgradesRefused == 1)
        }
        lab.advance(1_000)
        lab.run()
        #expect(Self.sessionUp(lab, 0, 1) && Self.sessionUp(lab, 1, 0))
        #expect(lab.nodes[0].core.report.sessions.initsSent == 2)
        #expect(Self.ping(lab, 0, 1, 3) && Self.ping(lab, 1, 0, 4))
    }

    @Test("duplicated handshake messages are refused: one session, no extra state")
    func duplicated() {
        let lab = Self.lab()
        lab.fromTun(0, TestPackets.echoRequest(from: lab.nodes[0].identity.address, to: lab.nodes[1].identity.address))
        lab.run()
        let handshakes = lab.carried.filter { lab.staticType($0.packet, between: 0, and: 1).map { $0 != .ipv6 } ?? false }
        #expect(handshakes.count == 2)
        for h in handshakes { lab.inject(h.to, h.packet) }
        lab.run()
        // Byte-for-byte duplicates: the nonce filter catches them before they are read.
        #expect(lab.nodes[0].core.stats.replaysDropped == 1 && lab.nodes[1].core.stats.replaysDropped == 1)
        // Resealed with fresh nonces (what a holder of the static key could do): refused by state.
        let key = lab.nodes[0].identity.secretKey.sharedSecret(with: lab.nodes[1].identity.publicKey)!
        for h in handshakes {
            let opened = try! PacketCipher(key: key).openSplit(h.packet.payload)
            let resealed = PacketCipher(key: key).seal(opened.header!, opened.body)
            lab.inject(h.to, DataPacket(hopLimit: h.packet.hopLimit, source: h.packet.source, destination: h.packet.destination,
                                        payload: resealed))
        }
        lab.run()
        #expect(lab.nodes[0].core.report.sessions.handshakesRefused == 1, "the Response: no Init pending")
        #expect(lab.nodes[1].core.report.sessions.handshakesRefused == 1, "the Init: its timestamp is not newer")
        #expect(lab.nodes[0].core.report.sessions.established == 1 && lab.nodes[1].core.report.sessions.established == 1)
        #expect(Self.ping(lab, 0, 1, 2) && Self.ping(lab, 1, 0, 3))
    }

    @Test("an old Init replayed after the nonce filter forgot it is refused by its timestamp")
    func staleInit() {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        let initPacket = lab.carried.first { lab.staticType($0.packet, between: 0, and: 1) == .sessionInit }!
        lab.advance(25_000)  // past two nonce-filter generations
        lab.inject(1, initPacket.packet)
        lab.run()
        #expect(lab.nodes[1].core.report.sessions.handshakesRefused == 1)
        #expect(lab.nodes[1].core.report.sessions.responsesSent == 1)
    }

    @Test("crossed handshakes (both start at once) end with one working session each way")
    func crossed() {
        let lab = Self.lab()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address))
        lab.fromTun(1, TestPackets.echoRequest(from: b.address, to: a.address))
        lab.run()
        #expect(lab.nodes[0].tun.written.count == 1 && lab.nodes[1].tun.written.count == 1)
        #expect(Self.sessionUp(lab, 0, 1) && Self.sessionUp(lab, 1, 0))
        #expect(lab.nodes[0].core.report.sessions.crossed + lab.nodes[1].core.report.sessions.crossed >= 1)
        for seq in UInt16(2)..<6 { #expect(Self.ping(lab, 0, 1, seq) && Self.ping(lab, 1, 0, seq)) }
        #expect(lab.nodes[0].core.stats.decryptFailures == 0 && lab.nodes[1].core.stats.decryptFailures == 0)
    }

    @Test("rekey under traffic loses nothing; old keys are erased once they may no longer be used")
    func rekey() {
        let lab = Self.lab()
        var seq: UInt16 = 1
        for _ in 0..<400 {  // 400 s of traffic both ways, a ping each second
            #expect(Self.ping(lab, 0, 1, seq) && Self.ping(lab, 1, 0, seq))
            seq &+= 1
            lab.advance(1_000)
            lab.run()
        }
        let s0 = lab.nodes[0].core.report.sessions, s1 = lab.nodes[1].core.report.sessions
        #expect(s0.rekeys + s1.rekeys >= 2)
        #expect(s0.erased >= 1 && s1.erased >= 1)
        #expect(lab.nodes[1].core.stats.downgradesRefused == 0 && lab.nodes[1].core.stats.decryptFailures == 0)
    }

    @Test("rekey on volume: a session is renewed after rekeyAfterPackets")
    func rekeyOnVolume() {
        var options = SessionOptions()
        options.limits.rekeyAfterPackets = 20
        let lab = Self.lab(sessions: [options])
        for seq in UInt16(1)...60 {
            #expect(Self.ping(lab, 0, 1, seq))
            lab.advance(300)  // a responder answers one Init per peer per 250 ms
        }
        #expect(lab.nodes[0].core.report.sessions.rekeys >= 2)
    }

    @Test("a restart of either side: traffic resumes after a new handshake", arguments: [0, 1])
    func restart(_ who: Int) {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1) && Self.ping(lab, 1, 0))
        lab.advance(3_000)
        lab.restart(who)
        // The restarted side lost its keys; a packet or two may be lost while the peers notice.
        var delivered = 0
        for seq in UInt16(2)..<12 {
            if Self.ping(lab, 0, 1, seq) { delivered += 1 }
            if Self.ping(lab, 1, 0, seq) { delivered += 1 }
        }
        #expect(delivered >= 17)
        #expect(Self.sessionUp(lab, 0, 1) && Self.sessionUp(lab, 1, 0))
        #expect(Self.ping(lab, 0, 1, 20) && Self.ping(lab, 1, 0, 20))
    }

    @Test("a restart with one-way traffic: the receiver that cannot open asks for a new session")
    func restartOneWay() {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        lab.restart(1)
        var delivered = 0
        for seq in UInt16(2)..<10 where Self.ping(lab, 0, 1, seq) { delivered += 1 }
        #expect(delivered >= 7)
        #expect(lab.nodes[1].core.report.sessions.initsSent >= 1)
    }

    @Test("a peer that never answers (Rust): pings both ways all along, then static after the retries")
    func rustPeer() {
        let lab = Self.lab(sessions: [Self.on, Self.rustLike])
        for seq in UInt16(1)...20 {
            #expect(Self.ping(lab, 0, 1, seq) && Self.ping(lab, 1, 0, seq))
            lab.advance(1_000)
            lab.run()
        }
        let s = lab.nodes[0].core.report.sessions
        #expect(s.initsSent == 3 && s.fallbacks == 1 && s.established == 0)
        #expect(lab.nodes[1].core.stats.sessionMessagesIgnored == 3)
        // After the fallback period one more handshake is tried.
        lab.advance(300_000)
        #expect(Self.ping(lab, 0, 1, 99))
        #expect(lab.nodes[0].core.report.sessions.initsSent == 4)
    }

    @Test("a peer that answered before and is rolled back to the static scheme: traffic resumes both ways after the fallback")
    func rolledBack() {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1) && Self.ping(lab, 1, 0))
        lab.restart(1, sessions: Self.rustLike)
        var firstBoth: Int?
        for second in 0..<40 {
            let there = Self.ping(lab, 0, 1, UInt16(second + 10)), back = Self.ping(lab, 1, 0, UInt16(second + 10))
            if there && back && firstBoth == nil { firstBoth = second }
            lab.advance(1_000)
            lab.run()
        }
        // Stale after 15 s without an answer, three Inits over 7 s, then static both ways.
        #expect(firstBoth != nil && firstBoth! <= 26, "recovered after \(String(describing: firstBoth)) s")
        #expect(lab.nodes[0].core.report.sessions.fallbacks == 1 && lab.nodes[0].core.report.sessionsUp == 0)
        #expect(Self.ping(lab, 0, 1, 99) && Self.ping(lab, 1, 0, 99))
    }

    @Test("one-way traffic: the receiver's keepalives keep the session from going stale")
    func keepalive() {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        for seq in UInt16(2)..<62 {
            #expect(Self.ping(lab, 0, 1, seq))
            lab.advance(1_000)
            lab.run()
        }
        #expect(lab.nodes[0].core.report.sessions.initsSent == 1, "no handshake for staleness")
        #expect(lab.nodes[0].core.report.sessions.rekeys == 0)
    }

    @Test("static data from a peer that has spoken the handshake is refused even after its session expired")
    func stickyCapable() throws {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1))
        lab.advance(200_000)  // every session erased
        #expect(!Self.sessionUp(lab, 0, 1) && !Self.sessionUp(lab, 1, 0))
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        let key = try #require(a.secretKey.sharedSecret(with: b.publicKey))
        let forged = PacketCipher(key: key).seal(UserHeader(type: .ipv6), TestPackets.echoRequest(from: a.address, to: b.address))
        lab.inject(1, DataPacket(hopLimit: 60, source: a.address, destination: b.address, payload: forged))
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 1 && lab.nodes[1].core.stats.downgradesRefused == 1)
        // A's next packet waits for the new session instead of going static, then arrives.
        #expect(Self.ping(lab, 0, 1, 2))
        #expect(lab.nodes[1].core.stats.downgradesRefused == 1)
    }

    @Test("indices stay bounded across many rekeys and promotions (no leak per handshake)")
    func indicesBounded() {
        var options = SessionOptions()
        options.limits.rekeyAfterPackets = 3
        let lab = Self.lab(sessions: [options])
        for seq in UInt16(1)...300 {
            #expect(Self.ping(lab, 0, 1, seq) && Self.ping(lab, 1, 0, seq))
            lab.advance(300)  // a responder answers one Init per peer per 250 ms
        }
        let s0 = lab.nodes[0].core.sessions!, s1 = lab.nodes[1].core.sessions!
        #expect(s0.counters.rekeys + s1.counters.rekeys >= 50)
        #expect(s0.indexCount <= 4 && s1.indexCount <= 4, "\(s0.indexCount) \(s1.indexCount)")
        #expect(s0.counters.erased + 4 >= s0.counters.established + s0.counters.responsesSent - 4)
    }

    @Test("the responder does not start a handshake of its own while the initiator's Confirm is on its way")
    func noDoubleHandshake() {
        let lab = Self.lab()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        // B answers A's ping before A's Confirm arrives: the reply waits for it, no Init from B.
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address))
        lab.run(maxSteps: 2)  // A's static ping and its Init reach B; B's Response is on its way
        lab.fromTun(1, TestPackets.echoRequest(from: b.address, to: a.address))
        lab.run()
        #expect(lab.nodes[1].core.report.sessions.initsSent == 0)
        #expect(lab.nodes[0].tun.written.count == 1, "B's packet went once the session was confirmed")
        #expect(Self.sessionUp(lab, 0, 1) && Self.sessionUp(lab, 1, 0))
    }

    @Test("forged undecryptable packets cost at most the probe budget; a real handshake still gets its answer")
    func forgedProbes() {
        let lab = Self.lab(3)
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        // 5000 packets "from" A to B that open with no key: at most one probe per 5 s for A.
        for i in 0..<5000 {
            lab.inject(1, DataPacket(hopLimit: 60, source: a.address, destination: b.address,
                                     payload: [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 80)))
        }
        lab.run()
        #expect(lab.nodes[1].core.report.sessions.initsSent == 1)
        #expect(lab.nodes[1].core.stats.decryptFailures == 5000)
        // C, a real peer, starts a handshake with B: answered.
        #expect(Self.ping(lab, 2, 1) && Self.sessionUp(lab, 2, 1) && Self.sessionUp(lab, 1, 2))
    }

    @Test("an outage long enough for the renewal to fail: one-way traffic resumes once the path is back")
    func outageOneWay() {
        let lab = Self.lab()
        #expect(Self.ping(lab, 0, 1) && Self.ping(lab, 1, 0))
        lab.cut = [0, 1]
        for seq in UInt16(2)..<32 {  // 30 s of pings into the void: stale, three Inits, fallback
            _ = Self.ping(lab, 0, 1, seq)
            lab.advance(1_000)
            lab.run()
        }
        #expect(lab.nodes[0].core.report.sessions.fallbacks == 1)
        lab.cut = []
        var delivered = 0
        for seq in UInt16(40)..<50 {
            if Self.ping(lab, 0, 1, seq) { delivered += 1 }
            lab.advance(200)
            lab.run()
        }
        // A now sends static; B, which still knows A speaks sessions, refuses it and offers a
        // session, which A takes.
        #expect(delivered >= 8, "\(delivered)")
        #expect(Self.sessionUp(lab, 0, 1) && Self.sessionUp(lab, 1, 0))
    }

    @Test("--require-sessions: packets wait for the handshake, then go; to a Rust peer they are dropped")
    func required() {
        let strict = SessionOptions(required: true)
        let lab = Self.lab(3, sessions: [strict, strict, Self.rustLike])
        let a = lab.nodes[0].identity
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: lab.nodes[1].identity.address))
        #expect(lab.pending.count == 1, "only the Init")
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 1, "released once the session is up")
        #expect(Self.ping(lab, 1, 0, 2))
        // Node 2 never answers.
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: lab.nodes[2].identity.address))
        lab.run()
        #expect(lab.nodes[2].tun.written.isEmpty)
        lab.advance(8_000)
        #expect(lab.nodes[0].core.stats.droppedNoSession == 1 && lab.nodes[0].core.queuedPackets == 0)
    }

    @Test("three nodes in a line: the session is end to end, the relay forwards it without a key")
    func throughRelay() {
        let lab = Self.lab(3)
        #expect(Self.ping(lab, 0, 2) && Self.ping(lab, 2, 0))
        #expect(Self.sessionUp(lab, 0, 2) && Self.sessionUp(lab, 2, 0))
        #expect(lab.nodes[1].core.cachedCiphers == 0 && lab.nodes[1].core.report.sessionsUp == 0)
        #expect(lab.nodes[1].tun.written.isEmpty)
        #expect(Self.ping(lab, 0, 2, 2) && lab.staticType(lab.carried.last!.packet, between: 0, and: 2) == nil)
    }

    @Test("out-of-band ICMP about a session packet is checked against the session key")
    func outOfBandUnderSession() throws {
        let lab = Self.lab(3)
        #expect(Self.ping(lab, 0, 2))
        // The relay loses its route to node 2: the next packet comes back as destination unreachable.
        lab.setTable(1, entries: lab.shortestPathEntries(from: 1).map {
            $0.owner == lab.nodes[2].identity.publicKey
                ? ForwardingTable.Entry(subnet: $0.subnet, nextHop: nil, metric: $0.metric, owner: $0.owner, expires: $0.expires) : $0
        })
        let before = lab.nodes[0].tun.written.count
        #expect(!Self.ping(lab, 0, 2, 2))
        #expect(lab.nodes[0].tun.written.count == before + 1)
        #expect(DatapathCoreTests.icmpType(lab.nodes[0].tun.written.last!) == 1)
        #expect(lab.nodes[0].core.stats.droppedSpoofed == 0)
    }
}

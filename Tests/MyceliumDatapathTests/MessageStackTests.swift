import MyceliumCore
import MyceliumCrypto
import MyceliumDatapath
import MyceliumRouting
import MyceliumTesting
import Testing

/// The message bus (spec §7): one stack against the spec's byte-exact exchange, then two and
/// three stacks over real datapath cores (sealed, routed, opened) on a virtual clock.
@Suite struct MessageStackTests {
    static let example = Vectors.vector("message.transfer_example")

    static func sends(_ actions: [MessageStack.Action]) -> [(bytes: [UInt8], to: IPv6Address)] {
        actions.compactMap { if case let .send(b, to) = $0 { return (b, to) } else { return nil } }
    }

    @Test("both ends of the spec's exchange produce its bytes: INIT, CHUNK, DONE one way; the ACKs and READ the other")
    func vectorExchange() throws {
        let v = Self.example
        let hex = { (k: String) throws -> [UInt8] in try #require(v[k].hexBytes) }
        let id = try hex("message_id_hex").reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var sender = MessageStack(address: a.address, publicKey: a.publicKey, newId: { id })
        var receiver = MessageStack(address: b.address, publicKey: b.publicKey)
        let t0 = Instant(milliseconds: 1_000)
        var out: [MessageStack.Action] = []

        let pushed = try sender.push(Array(try #require(v["data"].string).utf8), topic: Array(try #require(v["topic"].string).utf8),
                                     to: b.address, now: t0, into: &out)
        #expect(pushed == id)
        #expect(Self.sends(out).map(\.bytes) == [try hex("init_hex")] && Self.sends(out).first?.to == b.address)
        #expect(sender.status(of: id)?.state == .pending)

        func exchange(_ bytes: [UInt8], into stack: inout MessageStack, from: NodeIdentity, to: NodeIdentity) -> [[UInt8]] {
            out.removeAll()
            stack.received(bytes, from: from.address, sourceKey: from.publicKey, to: to.address, now: t0 + 10, into: &out)
            return Self.sends(out).map(\.bytes)
        }
        #expect(exchange(try hex("init_hex"), into: &receiver, from: a, to: b) == [try hex("init_ack_hex")])
        #expect(exchange(try hex("init_ack_hex"), into: &sender, from: b, to: a) == [try hex("chunk0_hex")])
        #expect(exchange(try hex("chunk0_hex"), into: &receiver, from: a, to: b) == [try hex("chunk_ack_hex")])
        #expect(exchange(try hex("chunk_ack_hex"), into: &sender, from: b, to: a) == [try hex("done_hex")])
        #expect(exchange(try hex("done_hex"), into: &receiver, from: a, to: b) == [try hex("done_ack_hex")])
        #expect(out.contains { if case .inboxChanged = $0 { true } else { false } })
        #expect(exchange(try hex("done_ack_hex"), into: &sender, from: b, to: a).isEmpty)
        #expect(sender.status(of: id)?.state == .received)

        out.removeAll()
        let message = try #require(receiver.pop(topic: nil, peek: false, into: &out))
        #expect(message.id == id && message.source == a.address && message.sourceKey == a.publicKey)
        #expect(message.destination == b.address && message.destinationKey == b.publicKey)
        #expect(String(decoding: message.data, as: UTF8.self) == v["data"].string)
        #expect(Self.sends(out).map(\.bytes) == [try hex("read_hex")] && Self.sends(out).first?.to == a.address)
        #expect(exchange(try hex("read_hex"), into: &sender, from: b, to: a).isEmpty)
        #expect(sender.status(of: id)?.state == .read)
        #expect(receiver.pop(topic: nil, peek: false, into: &out) == nil)
    }

    @Test("chunks are ceil(len/1300) and split evenly: none is short enough for Rust's receiver to refuse")
    func evenSplit() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        for length in [0, 1, 249, 1300, 1301, 1549, 2600, 2601, 13_001, 100_000] {
            var chunks: [MessagePacket.Body] = []
            lab.drop = { to, packet in
                guard to == 1, let body = Self.openMessage(lab, packet, from: 0, to: 1)?.body else { return false }
                if case .chunk = body { chunks.append(body) }
                return false
            }
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            _ = try lab.pushMessage(0, data, to: lab.nodes[1].identity.address)
            lab.advanceMessages(5_000)
            #expect(chunks.count == MessageProtocol.chunkCount(length: length), "length \(length)")
            var total = 0
            for case let .chunk(index, offset, piece) in chunks {
                total += piece.count
                #expect(piece.count <= MessageProtocol.chunkSize)
                // Rust refuses a chunk under 250 bytes unless its index is the last of a 250-byte split.
                let rustLast = max(0, (length + 249) / 250 - 1)
                #expect(piece.count >= MessageProtocol.minimumChunkSize || Int(index) == rustLast, "length \(length)")
                #expect(Array(data[Int(offset) ..< Int(offset) + piece.count]) == piece)
            }
            #expect(total == length)
            let got = try #require(lab.popMessage(1))
            #expect(got.data == data)
        }
    }

    static func openMessage(_ lab: DatapathLab, _ packet: DataPacket, from a: Int, to b: Int) -> MessagePacket? {
        guard let secret = lab.nodes[a].identity.secretKey.sharedSecret(with: lab.nodes[b].identity.publicKey),
              let opened = try? PacketCipher(key: secret).openSplit(packet.payload), opened.header?.type == .message else { return nil }
        return try? MessagePacket(decoding: opened.body)
    }

    @Test("three cores in a line: A's message reaches C through B (sealed end to end), C's reply reaches A's waiter")
    func lineWithReply() throws {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        let c = lab.nodes[2].identity
        let data = Array(repeating: UInt8(7), count: 5_000)
        let id = try lab.pushMessage(0, data, topic: Array("greeting".utf8), to: c.address, expectReply: true)
        lab.advanceMessages(1_000)
        #expect(lab.nodes[1].messages.pendingCount == 0 && lab.nodes[1].core.cachedCiphers == 0, "the relay opens nothing")
        let got = try #require(lab.popMessage(2, topic: Array("greeting".utf8)))
        #expect(got.data == data && got.id == id && got.sourceKey == lab.nodes[0].identity.publicKey)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .received)
        lab.advanceMessages(200)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .read)

        _ = try lab.pushMessage(2, Array("hello back".utf8), to: got.source, replyTo: got.id)
        lab.advanceMessages(1_000)
        let reply = try #require(lab.nodes[0].replies.first)
        #expect(reply.id == id && reply.isReply && String(decoding: reply.data, as: UTF8.self) == "hello back")
        #expect(lab.popMessage(0) == nil, "a reply someone waits for does not enter the inbox")
    }

    @Test("lost chunks, reordered and duplicated packets: the message arrives whole, once")
    func lossReorderDuplicates() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        var seen = 0
        var held: [DataPacket] = []
        lab.drop = { to, packet in
            seen += 1
            if seen % 5 == 0 { return true }  // every fifth packet lost, either way
            if to == 1, seen % 7 == 0 { held.append(packet); return true }  // delayed...
            return false
        }
        let data = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 8)) }
        let id = try lab.pushMessage(0, data, to: lab.nodes[1].identity.address)
        for _ in 0..<30 {
            lab.advanceMessages(100)
            for p in held { lab.inject(1, p); lab.inject(1, p) }  // ...then delivered twice, late
            held.removeAll()
        }
        lab.drop = nil
        lab.advanceMessages(2_000)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .received)
        #expect(lab.popMessage(1)?.data == data)
        #expect(lab.popMessage(1) == nil, "exactly once")
        #expect(lab.nodes[0].messages.stats.retransmitted > 0)
        #expect(lab.nodes[1].messages.stats.received == 1)
    }

    @Test("a lost DONE|ACK is answered again, so the sender learns the message arrived (Rust would stay silent)")
    func lostDoneAck() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        var dropped = false
        lab.drop = { to, packet in
            guard to == 0, !dropped, case .doneAck? = Self.openMessage(lab, packet, from: 1, to: 0)?.body else { return false }
            dropped = true
            return true
        }
        let id = try lab.pushMessage(0, Array("x".utf8), to: lab.nodes[1].identity.address)
        lab.advanceMessages(1_000)
        #expect(dropped)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .received)
        #expect(lab.nodes[1].messages.inboxCount == 1)
    }

    @Test("no route: the stack keeps trying and the message goes once the route appears; at the deadline it is aborted")
    func deadline() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        let id = try lab.pushMessage(0, Array("late".utf8), to: lab.nodes[1].identity.address)
        lab.advanceMessages(2_000)
        #expect(lab.nodes[0].core.stats.messagesNoRoute > 1 && lab.nodes[0].routeRequests.contains(lab.nodes[1].identity.address))
        lab.installShortestPaths(expiresIn: 3_600_000)
        lab.advanceMessages(1_000)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .received)

        lab.cut = [1]
        let lost = try lab.pushMessage(0, Array("never".utf8), to: lab.nodes[1].identity.address)
        lab.advanceMessages(MessageProtocol.sendWindowMs + 1_000)
        #expect(lab.nodes[0].messages.status(of: lost)?.state == .aborted)
        #expect(lab.nodes[0].messages.stats.expired == 1)
        lab.advanceMessages(MessageProtocol.sendWindowMs)
        #expect(lab.nodes[0].messages.status(of: lost) == nil, "forgotten a window after its deadline")
    }

    @Test("an idle half-received message is dropped; ABORTED drops one at once")
    func inboundExpiry() throws {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var receiver = MessageStack(address: b.address, publicKey: b.publicKey)
        var out: [MessageStack.Action] = []
        let t0 = Instant(milliseconds: 0)
        receiver.received(MessagePacket(id: 1, body: .initial(length: 5000, topic: [])).encode(), from: a.address,
                          sourceKey: a.publicKey, to: b.address, now: t0, into: &out)
        receiver.received(MessagePacket(id: 2, body: .initial(length: 5000, topic: [])).encode(), from: a.address,
                          sourceKey: a.publicKey, to: b.address, now: t0, into: &out)
        #expect(receiver.pendingCount == 2)
        receiver.received(MessagePacket(id: 2, body: .aborted).encode(), from: a.address, sourceKey: a.publicKey, to: b.address,
                          now: t0, into: &out)
        #expect(receiver.pendingCount == 1)
        receiver.tick(now: t0 + receiver.limits.pendingIdleMs, into: &out)
        #expect(receiver.pendingCount == 0 && receiver.stats.expired == 2)
    }

    @Test("acknowledgements from anyone but the destination, and chunks from anyone but the sender, change nothing")
    func strangersIgnored() throws {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2), m = DatapathLab.identity(seed: 3)
        var sender = MessageStack(address: a.address, publicKey: a.publicKey, newId: { 99 })
        var receiver = MessageStack(address: b.address, publicKey: b.publicKey)
        var out: [MessageStack.Action] = []
        let t = Instant(milliseconds: 0)
        _ = try sender.push([1, 2, 3], to: b.address, now: t, into: &out)
        out.removeAll()
        sender.received(MessagePacket(id: 99, body: .initialAck(length: 3, topicLength: 0)).encode(), from: m.address,
                        sourceKey: m.publicKey, to: a.address, now: t, into: &out)
        #expect(out.isEmpty && sender.status(of: 99)?.state == .pending)

        receiver.received(MessagePacket(id: 5, body: .initial(length: 3, topic: [])).encode(), from: a.address,
                          sourceKey: a.publicKey, to: b.address, now: t, into: &out)
        out.removeAll()
        // The stranger's chunk and DONE land on its own (absent) state, not on A's message.
        receiver.received(MessagePacket(id: 5, body: .chunk(index: 0, offset: 0, data: [9, 9, 9])).encode(), from: m.address,
                          sourceKey: m.publicKey, to: b.address, now: t, into: &out)
        receiver.received(MessagePacket(id: 5, body: .done(chunkCount: 1, checksum: BLAKE3.hash([9, 9, 9]))).encode(),
                          from: m.address, sourceKey: m.publicKey, to: b.address, now: t, into: &out)
        #expect(out.isEmpty && receiver.inboxCount == 0 && receiver.pendingCount == 1)
    }

    @Test("malformed and contradictory packets are counted and dropped: bad flags, out-of-bounds chunk, wrong checksum")
    func malformed() throws {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var receiver = MessageStack(address: b.address, publicKey: b.publicKey)
        var out: [MessageStack.Action] = []
        let t = Instant(milliseconds: 0)
        func feed(_ bytes: [UInt8]) {
            receiver.received(bytes, from: a.address, sourceKey: a.publicKey, to: b.address, now: t, into: &out)
        }
        feed([1, 2, 3])
        feed([0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x00, 0, 0])
        #expect(receiver.stats.malformed == 2)
        feed(MessagePacket(id: 1, body: .initial(length: 10, topic: [])).encode())
        feed(MessagePacket(id: 1, body: .chunk(index: 0, offset: 5, data: Array(repeating: 1, count: 6))).encode())
        feed(MessagePacket(id: 1, body: .chunk(index: 3, offset: 0, data: [1])).encode())
        #expect(receiver.stats.malformed == 4)
        feed(MessagePacket(id: 1, body: .chunk(index: 0, offset: 0, data: Array(repeating: 1, count: 10))).encode())
        feed(MessagePacket(id: 1, body: .done(chunkCount: 1, checksum: Array(repeating: 0, count: 32))).encode())
        #expect(receiver.stats.corrupt == 1 && receiver.inboxCount == 0 && receiver.pendingCount == 0)
    }

    @Test("topics: an allow list admits its sources only, replies pass, a forward socket takes the topic's messages")
    func topics() throws {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        let secret = Array("secret".utf8), feed = Array("feed".utf8)
        let bSubnet = lab.nodes[1].identity.subnet, aSubnet = lab.nodes[0].identity.subnet
        lab.withMessages(2) { stack in
            try? stack.topics.addSource(bSubnet, to: secret)
            try? stack.topics.add(feed)
            stack.topics.setForwardSocket("/run/feed.sock", of: feed)
        }
        let c = lab.nodes[2].identity.address
        _ = try lab.pushMessage(0, [1], topic: secret, to: c)
        _ = try lab.pushMessage(1, [2], topic: secret, to: c)
        _ = try lab.pushMessage(0, [3], topic: Array("open".utf8), to: c)
        lab.advanceMessages(1_000)
        #expect(lab.nodes[2].messages.stats.refusedTopic > 0)
        #expect(lab.popMessage(2, topic: secret)?.data == [2])
        #expect(lab.popMessage(2, topic: secret) == nil)
        #expect(lab.popMessage(2)?.data == [3])

        lab.withMessages(2) { $0.topics.defaultAccept = false }
        let id = try lab.pushMessage(2, [4], to: lab.nodes[0].identity.address, expectReply: true)
        lab.advanceMessages(500)
        let got = try #require(lab.popMessage(0))
        _ = try lab.pushMessage(0, [5], to: got.source, replyTo: id)
        lab.advanceMessages(500)
        #expect(lab.nodes[2].replies.map(\.data) == [[5]], "a reply skips the topic check")

        lab.withMessages(2) { try? $0.topics.addSource(aSubnet, to: feed) }
        _ = try lab.pushMessage(0, [6], topic: feed, to: c)
        lab.advanceMessages(500)
        #expect(lab.nodes[2].forwarded.map(\.socket) == ["/run/feed.sock"] && lab.nodes[2].forwarded.first?.message.data == [6])
        #expect(lab.nodes[2].messages.inboxCount == 0)
    }

    @Test("limits: pushes over a bound are refused with the reason; a full inbox leaves INITs unacknowledged until read")
    func limits() throws {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var limits = MessageLimits()
        limits.maxSending = 2
        limits.maxInbox = 1
        limits.maxMessageSize = 100
        var sender = MessageStack(address: a.address, publicKey: a.publicKey, limits: limits)
        var out: [MessageStack.Action] = []
        let t = Instant(milliseconds: 0)
        #expect(throws: MessageStack.PushError.topicTooLong(256)) {
            try sender.push([], topic: Array(repeating: 0, count: 256), to: b.address, now: t, into: &out)
        }
        #expect(throws: MessageStack.PushError.tooLarge(101, limit: 100)) {
            try sender.push(Array(repeating: 0, count: 101), to: b.address, now: t, into: &out)
        }
        _ = try sender.push([1], to: b.address, now: t, into: &out)
        _ = try sender.push([2], to: b.address, now: t, into: &out)
        #expect(throws: MessageStack.PushError.busy) { try sender.push([3], to: b.address, now: t, into: &out) }
        #expect(sender.stats.refusedPush == 3)

        var receiver = MessageStack(address: b.address, publicKey: b.publicKey, limits: limits)
        func deliver(id: UInt64, _ data: [UInt8]) -> Int {
            out.removeAll()
            for p in [MessagePacket(id: id, body: .initial(length: UInt64(data.count), topic: [])),
                      MessagePacket(id: id, body: .chunk(index: 0, offset: 0, data: data)),
                      MessagePacket(id: id, body: .done(chunkCount: 1, checksum: BLAKE3.hash(data)))] {
                receiver.received(p.encode(), from: a.address, sourceKey: a.publicKey, to: b.address, now: t, into: &out)
            }
            return Self.sends(out).count
        }
        #expect(deliver(id: 1, [1]) == 3)
        #expect(deliver(id: 2, [2]) == 0, "inbox full: not even INIT is acknowledged")
        #expect(receiver.stats.refusedFull == 1)
        _ = receiver.pop(topic: nil, peek: false, into: &out)
        #expect(deliver(id: 2, [2]) == 3)
        #expect(deliver(id: 3, Array(repeating: 0, count: 101)) == 0, "over the size limit")
    }

    @Test("peek leaves the message; a topic filter skips others; the inbox keeps arrival order")
    func popOrder() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        let b = lab.nodes[1].identity.address
        for (i, topic) in ["x", "y", "x"].enumerated() {
            _ = try lab.pushMessage(0, [UInt8(i)], topic: Array(topic.utf8), to: b)
            lab.advanceMessages(300)
        }
        #expect(lab.popMessage(1, peek: true)?.data == [0])
        #expect(lab.popMessage(1, topic: Array("y".utf8))?.data == [1])
        #expect(lab.popMessage(1)?.data == [0])
        #expect(lab.popMessage(1)?.data == [2])
        #expect(lab.popMessage(1) == nil)
    }

    @Test("a message to another address of the node's /64 (a container's) completes, and the reply from the node reaches the waiter")
    func otherAddressOfTheNode() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        let b = lab.nodes[1].identity
        let container = IPv6Address(high: b.address.high, low: 0x42)
        let id = try lab.pushMessage(0, Array("to the pod".utf8), to: container, expectReply: true)
        lab.advanceMessages(500)
        let got = try #require(lab.popMessage(1))
        #expect(got.destination == container && lab.nodes[0].messages.status(of: id)?.state == .received)
        _ = try lab.pushMessage(1, Array("from the node".utf8), to: got.source, replyTo: id)
        lab.advanceMessages(500)
        #expect(lab.nodes[0].replies.map(\.data) == [Array("from the node".utf8)])
        #expect(lab.nodes[0].messages.status(of: id)?.state == .read)
    }

    @Test("a repeated INIT (its INIT|ACK lost or overtaken) keeps the chunks already received")
    func repeatedInit() throws {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var receiver = MessageStack(address: b.address, publicKey: b.publicKey)
        var out: [MessageStack.Action] = []
        let data = (0..<2_000).map { UInt8(truncatingIfNeeded: $0) }
        func feed(_ p: MessagePacket) {
            receiver.received(p.encode(), from: a.address, sourceKey: a.publicKey, to: b.address, now: .zero, into: &out)
        }
        feed(MessagePacket(id: 9, body: .initial(length: 2_000, topic: [])))
        feed(MessagePacket(id: 9, body: .chunk(index: 0, offset: 0, data: Array(data[0..<1_000]))))
        out.removeAll()
        feed(MessagePacket(id: 9, body: .initial(length: 2_000, topic: [])))
        #expect(Self.sends(out).count == 1, "acknowledged again")
        feed(MessagePacket(id: 9, body: .chunk(index: 1, offset: 1_000, data: Array(data[1_000...]))))
        feed(MessagePacket(id: 9, body: .done(chunkCount: 2, checksum: BLAKE3.hash(data))))
        #expect(receiver.inboxCount == 1 && receiver.pop(topic: nil, peek: false, into: &out)?.data == data)
    }

    @Test("a receiver that never repeats DONE|ACK (Rust): its READ still marks the message delivered and read")
    func readWithoutDoneAck() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        lab.drop = { to, packet in
            to == 0 && { if case .doneAck? = Self.openMessage(lab, packet, from: 1, to: 0)?.body { true } else { false } }()
        }
        let id = try lab.pushMessage(0, Array("x".utf8), to: lab.nodes[1].identity.address)
        lab.advanceMessages(1_000)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .sending(pending: 0, sent: 0, acked: 1))
        #expect(lab.popMessage(1) != nil)
        lab.advanceMessages(300)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .read)
        #expect(lab.nodes[0].messages.stats.delivered == 1)
    }

    @Test("REPLY on an INIT passes the allow list only when it answers a message we sent to that node")
    func strayReplyChecked() throws {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        lab.withMessages(1) { $0.topics.defaultAccept = false }
        let b = lab.nodes[1].identity.address
        _ = try lab.pushMessage(0, [1], topic: Array("stray".utf8), to: b, replyTo: 0x1234)  // a "reply" to nothing B sent
        lab.advanceMessages(500)
        #expect(lab.nodes[1].messages.inboxCount == 0 && lab.nodes[1].messages.stats.refusedTopic > 0)
        // A reply chain under one id: A → B, B replies, A replies to the reply.
        lab.withMessages(1) { $0.topics.defaultAccept = true }
        let id = try lab.pushMessage(0, [2], to: b)
        lab.advanceMessages(500)
        let first = try #require(lab.popMessage(1, topic: []))
        _ = try lab.pushMessage(1, [3], to: first.source, replyTo: id)
        lab.advanceMessages(500)
        #expect(lab.popMessage(0)?.data == [3])
        _ = try lab.pushMessage(0, [4], to: b, replyTo: id)
        lab.advanceMessages(500)
        #expect(lab.popMessage(1, topic: [])?.data == [4], "the second message under the id is not taken for a late copy of the first")
    }

    @Test("the inbox's byte limit is checked before anything is acknowledged")
    func inboxBytesBeforeAck() throws {
        let a = DatapathLab.identity(seed: 1), b = DatapathLab.identity(seed: 2)
        var limits = MessageLimits()
        limits.maxInboxBytes = 100
        var receiver = MessageStack(address: b.address, publicKey: b.publicKey, limits: limits)
        var out: [MessageStack.Action] = []
        for id in [UInt64(1), 2] {
            receiver.received(MessagePacket(id: id, body: .initial(length: 60, topic: [])).encode(), from: a.address,
                              sourceKey: a.publicKey, to: b.address, now: .zero, into: &out)
        }
        #expect(Self.sends(out).count == 1 && receiver.pendingCount == 1 && receiver.stats.refusedFull == 1)
    }

    @Test("a message to our own address is delivered without leaving the node")
    func toSelf() throws {
        let lab = DatapathLab(count: 1)
        let me = lab.nodes[0].identity
        let id = try lab.pushMessage(0, Array(repeating: 1, count: 3_000), to: me.address)
        lab.advanceMessages(300)
        #expect(lab.popMessage(0)?.data.count == 3_000)
        #expect(lab.nodes[0].messages.status(of: id)?.state == .read)
        #expect(lab.nodes[0].sentToPeers == 0)
    }
}

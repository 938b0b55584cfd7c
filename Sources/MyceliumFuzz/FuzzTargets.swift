import MyceliumCNI
import MyceliumCore
import MyceliumDatapath
import MyceliumJSON
import MyceliumRouting

/// Everything the node decodes from outside, driven by one input: the first byte picks the
/// target, the rest is the target's input. The same function runs under libFuzzer
/// (`make fuzz`, `mycelium-fuzz` built with `-sanitize=fuzzer`) and in the regression tests
/// over the seed corpus and every crasher ever found (Tests/Fuzz).
///
/// A target must never trap: a decoder throws or returns nil on bad input, the router drops.
public enum FuzzTarget: UInt8, CaseIterable, Sendable {
    /// A peer's byte stream through the frame decoder (data and control packets).
    case frames = 0
    /// Decoded control TLVs of a stream fed into a router with three neighbours, with time
    /// advancing, route lookups and timers in between.
    case router = 1
    /// A LAN discovery beacon, judged as the listener does.
    case beacon = 2
    /// A decrypted user-data payload: user header, then an L3 packet (inner-header policy),
    /// an out-of-band ICMP report (decode, policy, reconstruction) or a message-bus packet.
    case payload = 3
    /// A packet read from the TUN, through the outbound policy and ICMPv6 error building.
    case tunPacket = 4
    /// A CNI network configuration (stdin of the plugin) and an agent request line.
    case cni = 5
    /// A DNS response to a peer lookup (`--peer-dns`): parsed, its SRV targets and addresses
    /// taken, and the outcome fed to a discovery plan.
    case dns = 6
    /// Message-bus packets from two senders fed to a message stack with small limits, with
    /// pushes, pops and time in between: the state machine never traps and its tables stay
    /// within their limits.
    case messages = 7

    public static func run(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let target = FuzzTarget(rawValue: first % UInt8(FuzzTarget.allCases.count))!
        target.run(Array(data.dropFirst()))
    }

    public static func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }

    public func run(_ input: [UInt8]) {
        switch self {
        case .frames: Self.frames(input)
        case .router: Self.router(input)
        case .beacon: Self.beacon(input)
        case .payload: Self.payload(input)
        case .tunPacket: Self.tunPacket(input)
        case .cni: Self.cni(input)
        case .dns: Self.dns(input)
        case .messages: Self.messages(input)
        }
    }

    static let local = PublicKey(bytes: [UInt8](repeating: 7, count: 32))!
    static let remote = PublicKey(bytes: [UInt8](repeating: 9, count: 32))!

    /// Decodes every packet of a stream; fed in two pieces to exercise partial frames.
    static func decodeStream(_ input: [UInt8]) -> [Packet] {
        var decoder = FrameDecoder()
        var packets: [Packet] = []
        let split = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
        for piece in [input[..<split], input[split...]] {
            decoder.append(piece)
            while packets.count < 10_000 {
                let output: FrameDecoder.Output?
                do { output = try decoder.next() } catch { return packets }  // framing lost: the peer is closed
                guard let output else { break }
                if case let .packet(p) = output { packets.append(p) }
            }
        }
        return packets
    }

    static func frames(_ input: [UInt8]) {
        for packet in decodeStream(input) {
            // What we decode we must be able to send back unchanged.
            _ = packet.encode()
        }
        // The datapath's path (payloads in pooled arrays, reused frame to frame) decodes the same.
        let pool = PacketPool()
        var plain = FrameDecoder(), pooled = FrameDecoder()
        plain.append(input)
        pooled.append(input)
        for _ in 0..<10_000 {
            let a = Result { () throws(WireError) in try plain.next() }
            let b = Result { () throws(WireError) in try pooled.next(pool: pool) }
            precondition(a == b, "pooled and plain frame decoding differ")
            guard case .success(let output?) = b else { break }
            if case let .packet(.data(d)) = output { pool.recycle(d.payload) }
        }
    }

    static func router(_ input: [UInt8]) {
        var now = Instant(milliseconds: 1_000)
        var router = Router(routerId: RouterId(publicKey: local, random: 1), now: now)
        var actions: [RouterAction] = []
        for n in 1...3 { router.handle(.neighbourAdded(NeighbourId(UInt64(n)), staticCost: 10), now: now, into: &actions) }
        for (i, packet) in decodeStream(input).enumerated() {
            now = now + Int64(i % 7) * 997
            let from = NeighbourId(UInt64(i % 3 + 1))
            switch packet {
            case let .control(tlv): router.handle(.received(tlv, from: from), now: now, into: &actions)
            case let .data(d):
                router.handle(.routeNeeded(d.destination), now: now, into: &actions)
                router.handle(.routeNeeded(d.source), now: now, into: &actions)
            case .keyProof: break  // the peer pipeline's, not the router's
            }
            if i % 5 == 4 { router.handle(.timer, now: router.nextWakeUp, into: &actions) }
            if i % 11 == 10 { router.handle(.neighbourRemoved(from), now: now, into: &actions) }
            actions.removeAll(keepingCapacity: true)
        }
        _ = router.forwardingTable()
        router.handle(.timer, now: now + 3_600_000, into: &actions)
    }

    static func messages(_ input: [UInt8]) {
        var limits = MessageLimits()
        limits.maxMessageSize = 4_096
        limits.maxPending = 4
        limits.maxPendingBytes = 8_192
        limits.maxInbox = 4
        limits.maxInboxBytes = 8_192
        limits.maxSending = 4
        limits.chunksInFlight = 2
        limits.completedMemory = 4
        var ids: UInt64 = 0
        var stack = MessageStack(address: local.overlayAddress, publicKey: local, limits: limits, newId: { ids += 1; return ids % 3 })
        try? stack.topics.addSource(Subnet.slash64(of: remote.overlayAddress), to: [1])
        let other = IPv6Address("5ff::1")!
        var actions: [MessageStack.Action] = []
        var now = Instant(milliseconds: 0)
        var rest = input[...]
        // Each record: one control byte, a length byte, that many bytes of packet.
        while let control = rest.first {
            rest = rest.dropFirst()
            let length = Int(rest.first ?? 0)
            rest = rest.dropFirst()
            let packet = Array(rest.prefix(length))
            rest = rest.dropFirst(min(length, rest.count))
            switch control % 8 {
            case 0, 1, 2:
                stack.received(packet, from: control & 0x10 == 0 ? remote.overlayAddress : other, sourceKey: remote,
                               to: local.overlayAddress, now: now, into: &actions)
            case 3:
                _ = try? stack.push(packet, topic: Array(packet.prefix(Int(control >> 4))), to: remote.overlayAddress,
                                    replyTo: control & 0x80 == 0 ? nil : UInt64(length % 3), expectReply: control & 0x40 != 0,
                                    now: now, into: &actions)
            case 4:
                _ = stack.pop(topic: control & 0x10 == 0 ? nil : [1], peek: control & 0x20 != 0, into: &actions)
            case 5:
                now = now + Int64(control) * 37
                stack.tick(now: now, into: &actions)
            case 6:
                now = now + MessageProtocol.sendWindowMs
                stack.tick(now: now, into: &actions)
            default:
                // Our own acknowledgements, fed back as if the far side were another stack.
                for case let .send(bytes, _) in actions.suffix(4) {
                    stack.received(bytes, from: remote.overlayAddress, sourceKey: remote, to: local.overlayAddress, now: now,
                                   into: &actions)
                }
            }
            precondition(stack.pendingCount <= limits.maxPending && stack.inboxCount <= limits.maxInbox
                && stack.inboxByteCount <= limits.maxInboxBytes && stack.sendingCount <= limits.maxSending, "a limit was exceeded")
            if actions.count > 4_096 { actions.removeAll(keepingCapacity: true) }
        }
    }

    static func beacon(_ input: [UInt8]) {
        guard let beacon = try? DiscoveryBeacon(decoding: input) else { return }
        _ = beacon.encode()
    }

    static func payload(_ input: [UInt8]) {
        let raw = input.withUnsafeBytes { try? UserHeader(decoding: $0) }
        precondition(raw == (try? UserHeader(decoding: input)), "raw and generic user-header decoders differ")
        guard let header = raw else { return }
        let body = Array(input.dropFirst(UserHeader.length))
        let outerSource = IPv6Address("520:c662:fd00:9e92:5d99:34ed:ab8:82ab")!
        let localSubnet = Subnet.slash64(of: local.overlayAddress)
        switch header.type {
        case .ipv6:
            _ = InboundPolicy.check(inner: body, outerSource: outerSource, outerDestination: local.overlayAddress)
            var stamped = body
            HopLimit.stamp(&stamped, hopLimit: 9)
        case .outOfBandICMP:
            guard let report = try? OutOfBandICMP(decoding: body) else { return }
            _ = InboundPolicy.checkReport(report, outerSource: report.reporter, localSubnet: localSubnet)
            _ = InboundPolicy.checkReportedPacket(report.originalPayload[...], report: report)
            _ = report.reconstruct(originalPacket: report.originalPayload, localAddress: local.overlayAddress, hopLimit: 3)
            _ = report.encode()
        case .message:
            if let message = try? MessagePacket(decoding: body) { _ = message.encode() }
        case .sessionInit:
            if let m = try? SessionInit(decoding: body) { precondition(m.encode() == Self.zeroingReserved(body)) }
        case .sessionResponse:
            if let m = try? SessionResponse(decoding: body) { precondition(m.encode() == Self.zeroingReserved(body)) }
        case .sessionConfirm:
            _ = SessionWire.nonce(of: body)
        }
    }

    /// A handshake message as we would encode it: bytes 1–3 (reserved) zero.
    static func zeroingReserved(_ body: [UInt8]) -> [UInt8] {
        var b = body
        for i in 1..<min(4, b.count) { b[i] = 0 }
        return b
    }

    static func tunPacket(_ input: [UInt8]) {
        // A TUN read: a virtio header, then the packet; split with and without the pool, alike.
        let pool = PacketPool()
        input.withUnsafeBytes { read in
            precondition(VirtioNetHeader(read) == VirtioNetHeader(input), "raw and generic virtio decoders differ")
            guard let header = VirtioNetHeader(read) else { return }
            let packet = UnsafeRawBufferPointer(rebasing: read[VirtioNetHeader.length...])
            var plain: [[UInt8]] = [], pooled: [[UInt8]] = []
            let a = Result { () throws(OffloadError) in try GSOSplit.split(packet, header: header, into: &plain) }
            let b = Result { () throws(OffloadError) in try GSOSplit.split(packet, header: header, into: &pooled, pool: pool) }
            precondition(a.isSuccess == b.isSuccess && plain == pooled, "pooled and plain GSO splits differ")
            for segment in pooled { pool.recycle(segment) }
        }
        let policy = OutboundPolicy(nodeAddress: local.overlayAddress)
        _ = policy.check(input)
        _ = OutboundPolicy.noRoute(for: input)
        if case .expired = HopLimit.step(input.first ?? 0) {}
    }

    static func cni(_ input: [UInt8]) {
        _ = try? CNIConfig(parsing: input)
        if let json = try? JSON(parsing: input) {
            _ = try? AgentRequest(json: json)
            _ = try? AgentReply(json: json)
            _ = json.compact
        }
    }

    static func dns(_ input: [UInt8]) {
        guard let message = try? DNSMessage(decoding: input) else { return }
        var plan = PeerDNSPlan(names: ["peers.example"], now: 0)
        var endpoints: [Endpoint] = []
        for target in PeerDNSRecords.srvTargets(in: message) {
            for (address, _) in PeerDNSRecords.addresses(of: target.target, in: message) {
                endpoints.append(Endpoint(proto: .tcp, host: .ip(address), port: target.port))
            }
        }
        let ttl = message.answers.map(\.ttl).min() ?? 0
        _ = plan.record(endpoints.isEmpty ? .empty : .records(endpoints, ttlSeconds: ttl), for: "peers.example", now: 0)
        _ = plan.record(.empty, for: "peers.example", now: Int64(ttl) * 1000)
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}

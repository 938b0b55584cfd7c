@testable import MyceliumQUIC
import NIOCore
import NIOPosix
import Testing

/// Two endpoints on loopback, one event loop: handshakes, the control stream, datagrams,
/// closing, timeouts and the endpoint's drop counters. Every wait is bounded.
@Suite struct QUICEndpointTests {
    struct TimedOut: Error {}

    /// A value expected once on `loop`, failing after `timeout`.
    final class Expectation<T: Sendable>: @unchecked Sendable {  // confined to `loop`
        let promise: EventLoopPromise<T>
        private var done = false
        init(_ loop: any EventLoop, timeout: TimeAmount = .seconds(10)) {
            promise = loop.makePromise()
            loop.scheduleTask(in: timeout) { [self] in fail(TimedOut()) }
        }
        func fulfil(_ value: T) {
            guard !done else { return }
            done = true
            promise.succeed(value)
        }
        func fail(_ error: any Error) {
            guard !done else { return }
            done = true
            promise.fail(error)
        }
        var value: T { get async throws { try await promise.futureResult.get() } }
    }

    /// Collects stream bytes until `count` arrived.
    final class Collector: @unchecked Sendable {  // confined to the loop
        var bytes: [UInt8] = []
        let expectation: Expectation<[UInt8]>
        let count: Int
        init(_ loop: any EventLoop, count: Int) {
            self.count = count
            expectation = Expectation(loop)
        }
        func add(_ b: UnsafeRawBufferPointer) {
            bytes += b
            if bytes.count >= count { expectation.fulfil(bytes) }
        }
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var loop: any EventLoop { group.any() }

    func endpoint(_ name: String, handshakeTimeout: UInt64 = 0) async throws -> QUICEndpoint {
        try await QUICEndpoint.bind(host: "::1", port: 0, on: loop, subjectAltName: name, handshakeTimeout: handshakeTimeout).get()
    }

    /// Runs `body`, then stops the loop whether it threw or not.
    func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    @Test("a dialled connection completes the handshake and carries the stream and datagrams both ways; closing reaches the peer")
    func streamAndDatagrams() async throws { try await run {
        let a = try await endpoint("a")
        let b = try await endpoint("b")
        let request = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }  // several packets, flow-controlled
        let serverStream = Collector(loop, count: request.count)
        let clientStream = Collector(loop, count: 5)
        let serverDatagram = Expectation<[UInt8]>(loop)
        let clientDatagram = Expectation<[UInt8]>(loop)
        let serverClosed = Expectation<QUICConnection.CloseReason>(loop)
        let established = Expectation<Bool>(loop)
        let target = a.localAddress
        try await loop.submit {
            a.onAccept = { c in
                c.onStreamData = { c, bytes in
                    let first = serverStream.bytes.isEmpty
                    serverStream.add(bytes)
                    if first { "reply".utf8.withContiguousStorageIfAvailable { _ = c.send(UnsafeRawBufferPointer($0)) } }
                }
                c.onDatagram = { c, bytes in
                    serverDatagram.fulfil(Array(bytes))
                    [UInt8]([9, 8, 7]).withUnsafeBytes { _ = c.sendDatagram($0) }
                }
                c.onClose = { _, reason in serverClosed.fulfil(reason) }
            }
            let c = try b.connect(to: target)
            c.onEstablished = { c in
                established.fulfil(c.maxDatagramPayload)
                request.withUnsafeBytes { _ = c.send($0) }
                Array(repeating: UInt8(0xAB), count: 1200).withUnsafeBytes { _ = c.sendDatagram($0) }
            }
            c.onStreamData = { _, bytes in clientStream.add(bytes) }
            c.onDatagram = { _, bytes in clientDatagram.fulfil(Array(bytes)) }
        }.get()
        _ = established
        #expect(try await serverStream.expectation.value == request)
        #expect(try await clientStream.expectation.value == Array("reply".utf8))
        #expect(try await serverDatagram.value == Array(repeating: 0xAB, count: 1200))
        #expect(try await clientDatagram.value == [9, 8, 7])
        try await loop.submit { #expect(a.connectionCount == 1 && b.connectionCount == 1) }.get()
        try await b.close().get()
        #expect(try await serverClosed.value == .peerClosed)
        try await loop.submit { #expect(a.connectionCount == 0) }.get()
        try await a.close().get()
    } }
}

extension QUICEndpointTests {
    @Test("a datagram of exactly the room a packet has is delivered; one byte more is refused and counted, the connection stays")
    func datagramRoom() async throws { try await run {
        let a = try await endpoint("a")
        let b = try await endpoint("b")
        let received = Expectation<Int>(loop)
        let established = Expectation<Int>(loop)
        let target = a.localAddress
        try await loop.submit {
            a.onAccept = { c in c.onDatagram = { _, bytes in received.fulfil(bytes.count) } }
            let c = try b.connect(to: target)
            c.onEstablished = { c in established.fulfil(c.maxDatagramPayload) }
        }.get()
        let room = try await established.value
        // 1504-byte UDP payloads less a short header with an 8-byte id, the frame header and the tag.
        #expect(room == 1504 - 32)
        let sent = try await loop.submit { () -> (Bool, Bool, Int) in
            let c = try #require(b.connections.first)
            let tooLarge = [UInt8](repeating: 1, count: room + 1).withUnsafeBytes { c.sendDatagram($0) }
            let fits = [UInt8](repeating: 2, count: room).withUnsafeBytes { c.sendDatagram($0) }
            return (tooLarge, fits, b.counters.datagramsDropped)
        }.get()
        #expect(sent.0 == false && sent.1 == true && sent.2 == 1)
        #expect(try await received.value == room)
        try await b.close().get()
        try await a.close().get()
    } }

    @Test("garbage and packets for no connection are counted and dropped; the endpoint still accepts a handshake")
    func garbage() async throws { try await run {
        let a = try await endpoint("a")
        let raw = try await DatagramBootstrap(group: loop).bind(host: "::1", port: 0).get()
        for payload in [[UInt8]([0x40]), [UInt8](repeating: 0x41, count: 40), [UInt8](repeating: 0xC0, count: 3)] {
            var buffer = raw.allocator.buffer(capacity: payload.count)
            buffer.writeBytes(payload)
            try await raw.writeAndFlush(AddressedEnvelope(remoteAddress: a.localAddress, data: buffer)).get()
        }
        var counters = QUICEndpoint.Counters()
        for _ in 0..<100 {
            counters = try await loop.submit { a.counters }.get()
            if counters.malformed + counters.unknownConnection + counters.initialsRejected >= 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(counters.malformed + counters.initialsRejected == 2 && counters.unknownConnection == 1, "\(counters)")
        let b = try await endpoint("b")
        let established = Expectation<Int>(loop)
        let target = a.localAddress
        try await loop.submit { try b.connect(to: target).onEstablished = { established.fulfil($0.maxDatagramPayload) } }.get()
        #expect(try await established.value > 0)
        try await raw.close().get()
        try await b.close().get()
        try await a.close().get()
    } }

    @Test("over the pending-handshake limit a client Initial is refused and counted; the dialler times out")
    func handshakeLimit() async throws { try await run {
        let a = try await endpoint("a")
        let b = try await endpoint("b", handshakeTimeout: 300_000_000)
        let closed = Expectation<QUICConnection.CloseReason>(loop)
        let target = a.localAddress
        try await loop.submit {
            a.maxPendingHandshakes = 0
            try b.connect(to: target).onClose = { _, reason in closed.fulfil(reason) }
        }.get()
        #expect(try await closed.value == .timedOut)
        let (refused, timeouts, open) = try await loop.submit { (a.counters.handshakesRefused, b.counters.timeouts, a.connectionCount) }.get()
        #expect(refused >= 1 && timeouts == 1 && open == 0)
        try await b.close().get()
        try await a.close().get()
    } }
}

/// A NAT between a client and a server on loopback: the client talks to its public port, the
/// server sees the NAT's outbound port, which `rebind()` changes (the old mapping then drops
/// what still arrives on it), as a home router does when its mapping expires.
final class RebindingNAT: @unchecked Sendable {  // confined to the test's one loop
    final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let onRead: @Sendable (AddressedEnvelope<ByteBuffer>, any Channel) -> Void
        init(_ onRead: @escaping @Sendable (AddressedEnvelope<ByteBuffer>, any Channel) -> Void) { self.onRead = onRead }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { onRead(unwrapInboundIn(data), context.channel) }
    }

    let server: SocketAddress
    var publicSide: (any Channel)!
    var outbound: [any Channel] = []
    var current = 0
    var client: SocketAddress?

    init(server: SocketAddress) { self.server = server }

    func start(on loop: any EventLoop) async throws {
        publicSide = try await DatagramBootstrap(group: loop).channelInitializer { ch in
            ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Relay { [unowned self] e, _ in
                client = e.remoteAddress
                outbound[current].writeAndFlush(AddressedEnvelope(remoteAddress: server, data: e.data), promise: nil)
            }) }
        }.bind(host: "::1", port: 0).get()
        for index in 0..<2 {
            outbound.append(try await DatagramBootstrap(group: loop).channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Relay { [unowned self] e, _ in
                    guard index == current, let client else { return }  // an expired mapping drops it
                    publicSide.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: e.data), promise: nil)
                }) }
            }.bind(host: "::1", port: 0).get())
        }
    }

    func rebind() { current = 1 }
    var outboundPorts: [Int] { outbound.map { $0.localAddress!.port! } }

    func close() async {
        try? await publicSide.close().get()
        for c in outbound { try? await c.close().get() }
    }
}

extension QUICEndpointTests {
    @Test("a NAT rebinding the client's port: the server validates the new path, follows it, and the stream goes on")
    func natRebinding() async throws { try await run {
        let a = try await endpoint("a")
        let b = try await endpoint("b")
        let nat = RebindingNAT(server: a.localAddress)
        try await loop.submit { }.get()
        try await nat.start(on: loop)
        let first = Collector(loop, count: 5)
        let second = Collector(loop, count: 10)
        let established = Expectation<Int>(loop)
        let serverSide = Expectation<QUICConnection>(loop)
        let target = try await loop.submit { nat.publicSide.localAddress! }.get()
        try await loop.submit {
            a.onAccept = { c in
                serverSide.fulfil(c)
                c.onStreamData = { _, bytes in
                    if first.bytes.count < 5 { first.add(bytes) } else { second.add(bytes) }
                }
            }
            let c = try b.connect(to: target)
            c.onEstablished = { c in
                established.fulfil(c.maxDatagramPayload)
                "hello".utf8.withContiguousStorageIfAvailable { _ = c.send(UnsafeRawBufferPointer($0)) }
            }
        }.get()
        _ = try await established.value
        #expect(try await first.expectation.value == Array("hello".utf8))
        let server = try await serverSide.value
        let ports = try await loop.submit { nat.outboundPorts }.get()
        #expect(try await loop.submit { server.remote.port }.get() == ports[0])
        try await loop.submit {
            nat.rebind()
            let c = try #require(b.connections.first)
            "after-move".utf8.withContiguousStorageIfAvailable { _ = c.send(UnsafeRawBufferPointer($0)) }
        }.get()
        #expect(try await second.expectation.value == Array("after-move".utf8))
        // The server's acknowledgements and packets now go to the new mapping.
        var moved = false
        for _ in 0..<100 where !moved {
            moved = try await loop.submit { server.remote.port == ports[1] && server.closeReason == nil }.get()
            if !moved { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(moved, "the server still sends to the old mapping")
        await nat.close()
        try await b.close().get()
        try await a.close().get()
    } }
}

extension QUICEndpointTests {
    @Test("forged packets carrying a live connection's id, from another address, are dropped: the connection stays where it was and carries on")
    func forgedPackets() async throws { try await run {
        let a = try await endpoint("a")
        let b = try await endpoint("b")
        let first = Collector(loop, count: 5)
        let second = Collector(loop, count: 5)
        let serverSide = Expectation<QUICConnection>(loop)
        let target = a.localAddress
        try await loop.submit {
            a.onAccept = { c in
                serverSide.fulfil(c)
                c.onStreamData = { _, bytes in if first.bytes.count < 5 { first.add(bytes) } else { second.add(bytes) } }
            }
            try b.connect(to: target).onEstablished = { c in
                "first".utf8.withContiguousStorageIfAvailable { _ = c.send(UnsafeRawBufferPointer($0)) }
            }
        }.get()
        #expect(try await first.expectation.value == Array("first".utf8))
        let server = try await serverSide.value
        let (key, before) = try await loop.submit { (server.key, server.remote) }.get()
        // An attacker who guessed the connection key: short headers with its id, random bodies.
        let raw = try await DatagramBootstrap(group: loop).bind(host: "::1", port: 0).get()
        for n in 0..<200 {
            var packet: [UInt8] = [0x40 | UInt8(n & 0x3F), UInt8(key >> 24), UInt8(truncatingIfNeeded: key >> 16),
                                   UInt8(truncatingIfNeeded: key >> 8), UInt8(truncatingIfNeeded: key)]
            packet += (0..<(4 + n % 1300)).map { _ in UInt8.random(in: 0...255) }
            var buffer = raw.allocator.buffer(capacity: packet.count)
            buffer.writeBytes(packet)
            try await raw.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer)).get()
        }
        try await loop.submit {
            let c = try #require(b.connections.first)
            "again".utf8.withContiguousStorageIfAvailable { _ = c.send(UnsafeRawBufferPointer($0)) }
        }.get()
        #expect(try await second.expectation.value == Array("again".utf8))
        let (after, reason, open) = try await loop.submit { (server.remote, server.closeReason, a.connectionCount) }.get()
        #expect(after == before && reason == nil && open == 1)
        try await raw.close().get()
        try await b.close().get()
        try await a.close().get()
    } }
}

extension QUICEndpointTests.Expectation where T == Bool {
    func fulfil(_ value: Int) { fulfil(value > 0) }
}

extension QUICEndpointTests {
    @Test("restarted with the same reset secret, an endpoint answers a packet for a connection of before with a stateless reset and the peer closes it at once; with another secret the peer does not believe it")
    func statelessReset() async throws { try await run {
        for sameSecret in [true, false] {
            let secret = [UInt8](repeating: 5, count: 32)
            let a = try await QUICEndpoint.bind(host: "::1", port: 0, on: loop, subjectAltName: "a", resetSecret: secret).get()
            let b = try await endpoint("b")
            let established = Expectation<Bool>(loop)
            let closed = Expectation<QUICConnection.CloseReason>(loop, timeout: .seconds(sameSecret ? 10 : 2))
            let (port, target) = (a.port, a.localAddress)
            try await loop.submit {
                let c = try b.connect(to: target)
                c.onEstablished = { _ in established.fulfil(true) }
                c.onClose = { _, reason in closed.fulfil(reason) }
            }.get()
            _ = try await established.value
            try await a.abandon().get()
            let restarted = try await QUICEndpoint.bind(host: "::1", port: port, on: loop, subjectAltName: "a",
                                                        resetSecret: sameSecret ? secret : [UInt8](repeating: 6, count: 32)).get()
            try await loop.submit {
                let c = try #require(b.connections.first)
                _ = [UInt8](repeating: 1, count: 200).withUnsafeBytes { c.sendDatagram($0) }
            }.get()
            if sameSecret {
                #expect(try await closed.value == .peerClosed)
            } else {
                await #expect(throws: TimedOut.self) { try await closed.value }
            }
            let (sent, open) = try await loop.submit { (restarted.counters.statelessResetsSent, b.connectionCount) }.get()
            #expect(sent >= 1, "the packet for a connection it does not know was answered")
            #expect(open == (sameSecret ? 0 : 1))
            try await b.close().get()
            try await restarted.close().get()
        }
    } }
}

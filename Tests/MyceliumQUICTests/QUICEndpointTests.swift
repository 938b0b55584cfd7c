import MyceliumQUIC
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

extension QUICEndpointTests.Expectation where T == Bool {
    func fulfil(_ value: Int) { fulfil(value > 0) }
}

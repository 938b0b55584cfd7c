import MyceliumCore
@testable import MyceliumNode
import NIOCore
import NIOPosix
import Testing

/// The SOCKS5 helper against servers on loopback: each probe answer classified, and a relay that
/// carries bytes both ways.
@Suite struct SOCKSProxyTests {
    /// Answers every connection with `reply` once it has read something, then echoes.
    final class Server: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: [UInt8]
        var greeted = false
        init(reply: [UInt8]) { self.reply = reply }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            if !greeted {
                greeted = true
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            }
        }
    }

    static func server(_ reply: [UInt8]) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { c in c.eventLoop.makeCompletedFuture { try c.pipeline.syncOperations.addHandler(Server(reply: reply)) } }
            .bind(host: "::1", port: 0).get()
    }

    static let loopback = IPv6Address("::1")!

    @Test("probe answers: open, authentication required, not a proxy, nothing listening")
    func probes() async throws {
        let proxy = SOCKSProxy(loop: MultiThreadedEventLoopGroup.singleton.next()) { [] }
        for (reply, expected) in [([UInt8]([5, 0]), SOCKSProxy.Status.valid), ([5, 0xFF], .authenticationRequired),
                                  (Array("HTTP/1.1 400".utf8), .notAProxy)] {
            let server = try await Self.server(reply)
            #expect(await proxy.probe(Self.loopback, port: server.localAddress!.port!) == expected, "\(reply)")
            try await server.close()
        }
        let closed = try await Self.server([])
        let port = closed.localAddress!.port!
        try await closed.close()
        #expect(await proxy.probe(Self.loopback, port: port) == .notListening)
    }

    @Test("connect relays a local port to the proxy, bytes both ways; disconnect closes it")
    func relay() async throws {
        let remote = try await Self.server([5, 0])
        let proxy = SOCKSProxy(loop: MultiThreadedEventLoopGroup.singleton.next(), listenPort: 0) { [] }
        let target = try SocketAddress(ipAddress: "::1", port: remote.localAddress!.port!)
        #expect(try await proxy.connect(to: target) == target)
        let port = try #require(proxy.boundPort)

        // A client of the relay: greeting, then an echo through the "proxy".
        final class Collect: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            var bytes: [UInt8] = []
            let done: EventLoopPromise<[UInt8]>
            let want: Int
            init(want: Int, done: EventLoopPromise<[UInt8]>) { self.want = want; self.done = done }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                bytes += unwrapInboundIn(data).readableBytesView
                if bytes.count >= want { done.succeed(bytes) }
            }
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let done = loop.makePromise(of: [UInt8].self)
        let collector = Collect(want: 2 + 5, done: done)
        let client = try await ClientBootstrap(group: loop)
            .channelInitializer { c in c.eventLoop.makeCompletedFuture { try c.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: "::1", port: port).get()
        try await client.writeAndFlush(ByteBuffer(bytes: [5, 1, 0])).get()
        try await Task.sleep(for: .milliseconds(100))
        try await client.writeAndFlush(ByteBuffer(bytes: Array("hello".utf8))).get()
        let timeout = loop.scheduleTask(in: .seconds(10)) { done.fail(CancellationError()) }
        #expect(try await done.futureResult.get() == [5, 0] + Array("hello".utf8))
        timeout.cancel()
        try await client.close()

        proxy.disconnect()
        #expect(proxy.boundPort == nil && proxy.connectedTarget == nil)
        try await remote.close()
        await #expect(throws: SOCKSProxy.Failure.self) { try await proxy.connect(to: nil) }
    }
}

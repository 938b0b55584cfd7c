import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client for the CLI's calls to the node's API on loopback.
///
/// Why not AsyncHTTPClient: it would add swift-nio-ssl (BoringSSL) to every build for plain
/// HTTP to 127.0.0.1; NIOHTTP1's codec, which we already have, is the part that matters.
public struct APIClient: Sendable {
    public struct Response: Sendable {
        public let status: Int
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public struct Unreachable: Error, CustomStringConvertible {
        public let address: APIAddress
        public let reason: String
        public var description: String {
            "cannot reach the mycelium API at \(address) (\(reason)); is the daemon running? (set --api-addr if it listens elsewhere)"
        }
    }

    public let address: APIAddress
    /// Bound on the whole exchange: a hung daemon must not hang the CLI.
    public var timeoutSeconds: Int64 = 10

    public init(address: APIAddress) { self.address = address }

    public enum Method: String, Sendable { case GET, POST, PUT, DELETE }

    public func get(_ path: String) async throws -> Response { try await request(.GET, path) }

    public func request(_ method: Method, _ path: String, json: String? = nil) async throws -> Response {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(Collector(promise: promise))
                    }
                }
                .connect(host: address.host, port: Int(address.port)).get()
        } catch {
            promise.fail(error)
            throw Unreachable(address: address, reason: Self.reason(error))
        }
        let timeout = loop.scheduleTask(in: .seconds(timeoutSeconds)) {
            promise.fail(Unreachable(address: address, reason: "no answer within \(timeoutSeconds) s"))
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method.rawValue), uri: path)
        head.headers.add(name: "Host", value: address.description)
        head.headers.add(name: "Connection", value: "close")
        let body = json.map { ByteBuffer(string: $0) }
        if body != nil { head.headers.add(name: "Content-Type", value: "application/json") }
        head.headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }

    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connection refused") || text.contains("Connection refused") { return "connection refused" }
        if error is ChannelError, case .connectTimeout = error as! ChannelError { return "connect timed out" }
        return text
    }

    final class Collector: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        var status = 0
        var body: [UInt8] = []

        init(promise: EventLoopPromise<Response>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(head): status = Int(head.status.code)
            case let .body(buffer): body += buffer.readableBytesView
            case .end: promise.succeed(Response(status: status, body: body))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)  // no-op if the response already completed
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
    }
}

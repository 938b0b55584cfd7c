/// Message-bus packets (spec §7.1): the plaintext after a user header of type `message`.
///
/// Header, 12 bytes:
/// ```
/// 0              8         10         12
/// +--------------+---------+----------+------+
/// | message id   | flags   | reserved | body |
/// +--------------+---------+----------+------+
/// ```
/// Bodies, selected by flags (ACK = 0x0100 added to the acknowledged flag):
/// ```
/// INIT       length u64 | topic len u8 | topic       INIT|ACK   length u64 | topic len u8
/// CHUNK      index u64 | offset u64 | size u64 | data   CHUNK|ACK  index | offset | size
/// DONE       chunk count u64 | BLAKE3 checksum (32)      DONE|ACK   the same
/// READ, ABORTED  (no body)
/// ```
/// INIT may carry REPLY (0x0400): the message answers an earlier one with the same id.
/// Dispatch order on receipt, as in Rust: INIT, CHUNK, DONE, READ, ABORTED.
public struct MessagePacket: Hashable, Sendable {
    public static let headerLength = 12
    /// Largest chunk data in one packet: 1400 − 12 − 24.
    public static let maxChunkData = 1364

    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let initial = Flags(rawValue: 0x8000)
        public static let done = Flags(rawValue: 0x4000)
        public static let aborted = Flags(rawValue: 0x2000)
        public static let chunk = Flags(rawValue: 0x1000)
        public static let read = Flags(rawValue: 0x0800)
        public static let reply = Flags(rawValue: 0x0400)
        public static let ack = Flags(rawValue: 0x0100)
    }

    public enum Body: Hashable, Sendable {
        case initial(length: UInt64, topic: [UInt8])
        case initialAck(length: UInt64, topicLength: UInt8)
        case chunk(index: UInt64, offset: UInt64, data: [UInt8])
        case chunkAck(index: UInt64, offset: UInt64, size: UInt64)
        case done(chunkCount: UInt64, checksum: [UInt8])
        case doneAck(chunkCount: UInt64, checksum: [UInt8])
        case read
        case aborted
    }

    /// 8 random bytes; shown as 16 hex characters in APIs.
    public var id: UInt64
    /// Set on INIT of a reply message.
    public var isReply: Bool
    public var body: Body

    public init(id: UInt64, isReply: Bool = false, body: Body) {
        if case let .initial(_, topic) = body { precondition(topic.count <= 255, "topic longer than 255 bytes") }
        if case let .chunk(_, _, data) = body { precondition(data.count <= MessagePacket.maxChunkData, "chunk data too large") }
        self.id = id
        self.isReply = isReply
        self.body = body
    }

    public var idHex: String {
        var b = [UInt8]()
        b.appendU64(id)
        return Hex.encode(b)
    }

    public var flags: Flags {
        var f: Flags
        switch body {
        case .initial: f = .initial
        case .initialAck: f = [.initial, .ack]
        case .chunk: f = .chunk
        case .chunkAck: f = [.chunk, .ack]
        case .done: f = .done
        case .doneAck: f = [.done, .ack]
        case .read: f = .read
        case .aborted: f = .aborted
        }
        if isReply { f.insert(.reply) }
        return f
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        id = try r.u64()
        let flags = Flags(rawValue: try r.u16())
        try r.skip(2)
        isReply = flags.contains(.reply)
        let ack = flags.contains(.ack)
        if flags.contains(.initial) {
            let length = try r.u64()
            let topicLength = try r.u8()
            body = ack ? .initialAck(length: length, topicLength: topicLength)
                : .initial(length: length, topic: Array(try r.take(Int(topicLength))))
        } else if flags.contains(.chunk) {
            let index = try r.u64(), offset = try r.u64(), size = try r.u64()
            if ack {
                body = .chunkAck(index: index, offset: offset, size: size)
            } else {
                guard size <= UInt64(MessagePacket.maxChunkData) else { throw .oversized(length: Int(clamping: size), limit: MessagePacket.maxChunkData) }
                body = .chunk(index: index, offset: offset, data: Array(try r.take(Int(size))))
            }
        } else if flags.contains(.done) {
            let count = try r.u64()
            let checksum = Array(try r.take(32))
            body = ack ? .doneAck(chunkCount: count, checksum: checksum) : .done(chunkCount: count, checksum: checksum)
        } else if flags.contains(.read) {
            body = .read
        } else if flags.contains(.aborted) {
            body = .aborted
        } else {
            throw .invalidField("message flags \(flags.rawValue)")
        }
    }

    public func encode() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(MessagePacket.headerLength + 24)
        out.appendU64(id)
        out.appendU16(flags.rawValue)
        out.appendU16(0)
        switch body {
        case let .initial(length, topic):
            out.appendU64(length)
            out.append(UInt8(topic.count))
            out += topic
        case let .initialAck(length, topicLength):
            out.appendU64(length)
            out.append(topicLength)
        case let .chunk(index, offset, data):
            out.appendU64(index); out.appendU64(offset); out.appendU64(UInt64(data.count))
            out += data
        case let .chunkAck(index, offset, size):
            out.appendU64(index); out.appendU64(offset); out.appendU64(size)
        case let .done(count, checksum), let .doneAck(count, checksum):
            out.appendU64(count)
            out += checksum
        case .read, .aborted:
            break
        }
        return out
    }
}

/// Splits a peer byte stream into packets (spec §3).
///
/// Flow: append bytes as they arrive, then call `next()` until it returns nil (needs more).
/// Every frame's extent is known from length fields alone (data: header length; control:
/// Babel body length), so a frame whose *content* is rejected is skipped whole and reported
/// as `.dropped`; the stream stays in sync. Only an outer header with an unknown version or
/// type loses framing: that is thrown, and the connection must be closed.
///
/// Memory is bounded: at most one incomplete frame (≤ 65 575 bytes) plus what the caller
/// appended since the last `next()`.
public struct FrameDecoder: Sendable {
    public enum Output: Hashable, Sendable {
        case packet(Packet)
        /// A complete frame was read and discarded; the stream is still in sync.
        case dropped(WireError)
    }

    /// The largest frame a stream can carry: 4 + 36 + 65535 (data).
    public static let maxFrameLength = Packet.headerLength + DataPacket.headerLength + DataPacket.maxPayloadLength

    private var buffer: [UInt8] = []
    private var start = 0
    private var failed: WireError?

    public init() {}

    /// Bytes buffered but not yet consumed.
    public var bufferedCount: Int { buffer.count - start }

    /// Empty and in sync again, keeping the buffer's capacity (one decoder reused for every
    /// QUIC datagram, each a stream of its own).
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        start = 0
        failed = nil
    }

    public mutating func append<S: Sequence<UInt8>>(_ bytes: S) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(buffer raw: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: raw)
    }

    /// The next packet or dropped frame, nil if more bytes are needed; a data packet's payload
    /// in an array from `pool` if given.
    /// Throws (and keeps throwing) once framing is lost.
    public mutating func next(pool: PacketPool? = nil) throws(WireError) -> Output? {
        if let failed { throw failed }
        let available = buffer.count - start
        guard available >= Packet.headerLength else { return nil }
        let version = buffer[start]
        guard version == Packet.version else { return try fail(.unsupportedVersion(version)) }
        guard let type = Packet.PacketType(rawValue: buffer[start + 1]) else {
            return try fail(.unknownPacketType(buffer[start + 1]))
        }
        let bodyStart = start + Packet.headerLength
        switch type {
        case .data:
            guard available >= Packet.headerLength + DataPacket.headerLength else { return nil }
            var reader = WireReader(buffer, start: bodyStart, end: bodyStart + DataPacket.headerLength)
            let header = try DataPacket.Header(reading: &reader)
            let frameEnd = bodyStart + DataPacket.headerLength + header.payloadLength
            guard buffer.count >= frameEnd else { return nil }
            let range = (bodyStart + DataPacket.headerLength)..<frameEnd
            let payload = pool.map { pool in buffer.withUnsafeBytes { pool.copy(UnsafeRawBufferPointer(rebasing: $0[range])) } }
                ?? Array(buffer[range])
            start = frameEnd
            return .packet(.data(DataPacket(hopLimit: header.hopLimit, source: header.source,
                                            destination: header.destination, payload: payload)))
        case .control:
            guard available >= Packet.headerLength + ControlPacket.headerLength else { return nil }
            let bodyLength = Int(buffer[bodyStart + 2]) << 8 | Int(buffer[bodyStart + 3])
            let frameEnd = bodyStart + ControlPacket.headerLength + bodyLength
            guard buffer.count >= frameEnd else { return nil }
            let magic = buffer[bodyStart], babelVersion = buffer[bodyStart + 1]
            var reader = WireReader(buffer, start: bodyStart, end: frameEnd)
            start = frameEnd
            guard magic == ControlPacket.magic, babelVersion == ControlPacket.version else {
                return .dropped(.badControlHeader(magic: magic, version: babelVersion))
            }
            do {
                return .packet(.control(try ControlPacket.decode(body: &reader)))
            } catch {
                return .dropped(error)
            }
        case .keyProof:
            let frameEnd = bodyStart + KeyProofFrame.bodyLength
            guard buffer.count >= frameEnd else { return nil }
            var reader = WireReader(buffer, start: bodyStart, end: frameEnd)
            start = frameEnd
            do {
                return .packet(.keyProof(try KeyProofFrame(reading: &reader)))
            } catch {
                return .dropped(error)
            }
        }
    }

    private mutating func fail(_ error: WireError) throws(WireError) -> Output? {
        failed = error
        throw error
    }

    /// Drops consumed bytes once they dominate the buffer, keeping appends amortised O(1).
    private mutating func compact() {
        if start > 0, start >= buffer.count - start {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    /// Decodes exactly one complete frame (e.g. a QUIC datagram); trailing bytes are an error.
    public static func decodeSingle(_ frame: [UInt8]) throws(WireError) -> Packet {
        var decoder = FrameDecoder()
        decoder.append(frame)
        switch try decoder.next() {
        case let .packet(packet)?:
            guard decoder.bufferedCount == 0 else { throw .invalidField("\(decoder.bufferedCount) trailing bytes after frame") }
            return packet
        case let .dropped(error)?:
            throw error
        case nil:
            throw .truncated(needed: frame.count + 1, available: frame.count)
        }
    }
}

/// A Mycelium packet as carried on every peer stream (spec §3).
///
/// Outer header, 4 bytes, then a self-delimiting body (no outer length field):
/// ```
/// 0         1      2          4
/// +---------+------+----------+------------------------------+
/// | version | type | reserved | body (data §3.2 / control §3.3) |
/// |   = 1   | 0/1/2|  00 00   |                              |
/// +---------+------+----------+------------------------------+
/// ```
/// Type 2 (`KeyProofFrame`) is ours: a key proof for a peer whose key is pinned.
public enum Packet: Hashable, Sendable {
    case data(DataPacket)
    case control(ControlTLV)
    case keyProof(KeyProofFrame)

    public static let version: UInt8 = 1
    public static let headerLength = 4

    public enum PacketType: UInt8, Sendable {
        case data = 0
        case control = 1
        case keyProof = 2
    }

    /// The complete frame to write to a stream.
    public func encode() -> [UInt8] {
        var out = [UInt8]()
        encode(to: &out)
        return out
    }

    public func encode(to out: inout [UInt8]) {
        switch self {
        case let .data(packet):
            out.reserveCapacity(out.count + Packet.headerLength + DataPacket.headerLength + packet.payload.count)
            packet.appendFrameHeader(to: &out)
            out += packet.payload
        case let .control(tlv):
            out += [Packet.version, PacketType.control.rawValue, 0, 0]
            ControlPacket.write(tlv, to: &out)
        case let .keyProof(frame):
            out += [Packet.version, PacketType.keyProof.rawValue, 0, 0]
            frame.write(to: &out)
        }
    }
}

/// Data packet body (spec §3.2): 36-byte header, then `length` bytes of encrypted payload.
/// ```
/// 0          1            3           4          20         36
/// +----------+------------+-----------+----------+----------+-------------+
/// | reserved | length u16 | hop limit | src IPv6 | dst IPv6 | payload ... |
/// +----------+------------+-----------+----------+----------+-------------+
/// ```
/// The header is not authenticated by the payload cipher.
public struct DataPacket: Hashable, Sendable {
    public static let headerLength = 36
    public static let maxPayloadLength = Int(UInt16.max)

    public var hopLimit: UInt8
    public var source: IPv6Address
    public var destination: IPv6Address
    /// The encrypted blob (ciphertext ‖ tag ‖ nonce, see `EncryptedPayload`).
    public var payload: [UInt8]

    public init(hopLimit: UInt8, source: IPv6Address, destination: IPv6Address, payload: [UInt8]) {
        precondition(payload.count <= DataPacket.maxPayloadLength, "data payload exceeds 65535 bytes")
        self.hopLimit = hopLimit
        self.source = source
        self.destination = destination
        self.payload = payload
    }

    /// Header fields only; `payloadLength` bytes of payload follow.
    public struct Header: Hashable, Sendable {
        public var payloadLength: Int
        public var hopLimit: UInt8
        public var source: IPv6Address
        public var destination: IPv6Address

        /// Reads the 36 header bytes. Byte 0 is ignored, as in Rust.
        public init(reading reader: inout WireReader) throws(WireError) {
            try reader.skip(1)
            payloadLength = Int(try reader.u16())
            hopLimit = try reader.u8()
            source = IPv6Address(bytes: try reader.take(16))
            destination = IPv6Address(bytes: try reader.take(16))
        }
    }

    /// The frame's first 40 bytes (outer header and data header); the payload follows them
    /// on the stream. Apart so a writer can copy the payload once, straight into its own buffer.
    public func appendFrameHeader(to out: inout [UInt8]) {
        out.append(Packet.version)
        out.append(Packet.PacketType.data.rawValue)
        out.append(0)
        out.append(0)
        out.append(0)
        out.appendU16(UInt16(payload.count))
        out.append(hopLimit)
        source.append(to: &out)
        destination.append(to: &out)
    }
}

/// Control packet body (spec §3.3): a Babel-style header and exactly one TLV.
/// ```
/// 0       1         2              4      5     6
/// +-------+---------+--------------+------+-----+-----------+
/// | magic | version | body len u16 | type | len | TLV body  |
/// |  42   |    3    | = 2 + len    |      |     |           |
/// +-------+---------+--------------+------+-----+-----------+
/// ```
public enum ControlPacket {
    public static let magic: UInt8 = 42
    public static let version: UInt8 = 3
    public static let headerLength = 4

    static func write(_ tlv: ControlTLV, to out: inout [UInt8]) {
        let start = out.count
        out += [magic, version, 0, 0, tlv.kind.rawValue, 0]
        tlv.writeBody(to: &out)
        let tlvLength = out.count - start - 6
        precondition(tlvLength <= Int(UInt8.max))
        out[start + 5] = UInt8(tlvLength)
        let bodyLength = UInt16(tlvLength + 2)
        out[start + 2] = UInt8(bodyLength >> 8)
        out[start + 3] = UInt8(truncatingIfNeeded: bodyLength)
    }

    /// Decodes a whole control body (Babel header onwards) held in `reader`.
    /// `reader` must end exactly at the end of the body.
    static func decode(body reader: inout WireReader) throws(WireError) -> ControlTLV {
        let bodyLength = reader.remaining - headerLength
        guard reader.remaining >= headerLength + 2 else { throw .truncated(needed: headerLength + 2, available: reader.remaining) }
        try reader.skip(headerLength)
        let type = try reader.u8()
        let length = Int(try reader.u8())
        guard length + 2 <= bodyLength else { throw .badControlLength(bodyLength: bodyLength, tlvLength: length) }
        var tlvReader = WireReader(reader.bytes, start: reader.offset, end: reader.offset + length)
        return try ControlTLV.decode(type: type, body: &tlvReader)
    }
}

/// Why bytes from the network were rejected. Every decoder throws only this type.
public enum WireError: Error, Hashable, Sendable {
    /// Fewer bytes than the layout needs.
    case truncated(needed: Int, available: Int)
    /// Outer packet header version is not 1 (fatal for a stream: framing is lost).
    case unsupportedVersion(UInt8)
    /// Outer packet header type is not 0 (data), 1 (control) or 2 (key proof) (fatal for a stream).
    case unknownPacketType(UInt8)
    /// Babel header magic/version is not 42/3.
    case badControlHeader(magic: UInt8, version: UInt8)
    /// A TLV type Mycelium does not define.
    case unknownTLV(type: UInt8)
    /// The Babel body length disagrees with the TLV it carries.
    case badControlLength(bodyLength: Int, tlvLength: Int)
    /// An address encoding that is unknown or not allowed here.
    case badAddressEncoding(UInt8)
    /// A prefix length impossible for its address family or encoding.
    case badPrefixLength(UInt8)
    /// A field value the protocol forbids (the string names it).
    case invalidField(String)
    /// A frame longer than this implementation accepts.
    case oversized(length: Int, limit: Int)
}

extension WireError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .truncated(needed, available): "truncated: needed \(needed) bytes, \(available) available"
        case let .unsupportedVersion(v): "unsupported packet version \(v)"
        case let .unknownPacketType(t): "unknown packet type \(t)"
        case let .badControlHeader(magic, version): "bad control header magic \(magic) version \(version)"
        case let .unknownTLV(type): "unknown TLV type \(type)"
        case let .badControlLength(body, tlv): "control body length \(body) does not fit TLV length \(tlv)"
        case let .badAddressEncoding(ae): "bad address encoding \(ae)"
        case let .badPrefixLength(plen): "bad prefix length \(plen)"
        case let .invalidField(what): "invalid field: \(what)"
        case let .oversized(length, limit): "frame of \(length) bytes exceeds limit \(limit)"
        }
    }
}

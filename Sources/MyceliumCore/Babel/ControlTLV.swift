/// The five TLVs Mycelium exchanges. A control packet carries exactly one.
///
/// ```
/// 0      1     2
/// +------+-----+----------------+
/// | type | len | body (len B)   |
/// +------+-----+----------------+
/// ```
/// Decoding is by the length byte: a body longer than its layout is accepted (the rest is
/// skipped, like RFC 8966 sub-TLVs); a shorter one or bad field is an error. Either way the
/// caller knows exactly where the TLV ended, so a rejected TLV never desynchronises a stream.
public enum ControlTLV: Hashable, Sendable {
    case hello(Hello)
    case ihu(IHU)
    case update(Update)
    case routeRequest(RouteRequest)
    case seqNoRequest(SeqNoRequest)

    public enum Kind: UInt8, Sendable, CaseIterable {
        case hello = 4
        case ihu = 5
        case update = 8
        case routeRequest = 9
        case seqNoRequest = 10
    }

    public var kind: Kind {
        switch self {
        case .hello: .hello
        case .ihu: .ihu
        case .update: .update
        case .routeRequest: .routeRequest
        case .seqNoRequest: .seqNoRequest
        }
    }

    /// Decodes a TLV body of the given type.
    public static func decode(type: UInt8, body: [UInt8]) throws(WireError) -> ControlTLV {
        var reader = WireReader(body)
        return try decode(type: type, body: &reader)
    }

    static func decode(type: UInt8, body reader: inout WireReader) throws(WireError) -> ControlTLV {
        guard let kind = Kind(rawValue: type) else { throw .unknownTLV(type: type) }
        switch kind {
        case .hello: return .hello(try Hello(body: &reader))
        case .ihu: return .ihu(try IHU(body: &reader))
        case .update: return .update(try Update(body: &reader))
        case .routeRequest: return .routeRequest(try RouteRequest(body: &reader))
        case .seqNoRequest: return .seqNoRequest(try SeqNoRequest(body: &reader))
        }
    }

    /// The body alone (no type/length header).
    public func encodeBody() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(96)
        writeBody(to: &out)
        return out
    }

    func writeBody(to out: inout [UInt8]) {
        switch self {
        case let .hello(t): t.writeBody(to: &out)
        case let .ihu(t): t.writeBody(to: &out)
        case let .update(t): t.writeBody(to: &out)
        case let .routeRequest(t): t.writeBody(to: &out)
        case let .seqNoRequest(t): t.writeBody(to: &out)
        }
    }
}

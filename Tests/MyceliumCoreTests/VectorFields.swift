import MyceliumCore
import MyceliumTesting

/// Builds codec values from the `fields` objects of the vectors, so each vector is read
/// generically instead of being copied into assertions by hand.
enum VectorFields {
    struct Bad: Error, CustomStringConvertible { let description: String }

    static func int(_ v: JSONValue, _ key: String) throws -> Int {
        guard let n = v[key].int else { throw Bad(description: "field \(key) missing in \(v)") }
        return n
    }

    /// "200:19:1a:1b::/64 (built from …)" → the prefix; null → nil.
    static func subnet(_ v: JSONValue) throws -> Subnet? {
        guard let text = v.string else { return nil }
        let prefix = String(text.split(separator: " ")[0])
        guard let s = Subnet(prefix) else { throw Bad(description: "bad prefix \(text)") }
        return s
    }

    static func routerId(_ v: JSONValue) throws -> RouterId {
        guard let bytes = v.hexBytes, let id = RouterId(bytes: bytes) else { throw Bad(description: "bad router id \(v)") }
        return id
    }

    /// The TLV described by `fields`, for the TLV named in a vector id (`babel.<name>.…`).
    static func tlv(named name: String, fields f: JSONValue) throws -> ControlTLV {
        switch name {
        case "hello":
            return .hello(Hello(flags: UInt16(try int(f, "flags")), seqno: SeqNo(UInt16(try int(f, "seqno"))),
                                interval: UInt16(try int(f, "interval_cs"))))
        case "ihu":
            return .ihu(IHU(rxCost: UInt16(try int(f, "rx_cost")), interval: UInt16(try int(f, "interval_cs")),
                            address: f["address"].string.flatMap(IPAddress.init)))
        case "update":
            return .update(Update(flags: UInt8(try int(f, "flags")), interval: UInt16(try int(f, "interval_cs")),
                                  seqno: SeqNo(UInt16(try int(f, "seqno"))), metric: Metric(UInt16(try int(f, "metric"))),
                                  subnet: try subnet(f["prefix"])!, routerId: try routerId(f["router_id_hex"])))
        case "route_request":
            return .routeRequest(RouteRequest(generation: UInt8(try int(f, "generation")), prefix: try subnet(f["prefix"])))
        case "seqno_request":
            return .seqNoRequest(SeqNoRequest(seqno: SeqNo(UInt16(try int(f, "seqno"))), hopCount: UInt8(try int(f, "hop_count")),
                                              routerId: try routerId(f["router_id_hex"]), prefix: try subnet(f["prefix"])!))
        default:
            throw Bad(description: "unknown TLV name \(name)")
        }
    }

    static func type(named name: String) -> UInt8 {
        switch name {
        case "hello": ControlTLV.Kind.hello.rawValue
        case "ihu": ControlTLV.Kind.ihu.rawValue
        case "update": ControlTLV.Kind.update.rawValue
        case "route_request": ControlTLV.Kind.routeRequest.rawValue
        default: ControlTLV.Kind.seqNoRequest.rawValue
        }
    }
}

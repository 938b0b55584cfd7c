/// RouteRequest TLV (type 9), body length 3 + prefix bytes (spec §5.2, §5.10).
///
/// ```
/// 0            1    2      3
/// +------------+----+------+--------------+
/// | generation | AE | plen | prefix (p B) |
/// +------------+----+------+--------------+
/// ```
/// The leading generation byte is Mycelium's: how often the request has been forwarded.
/// A nil prefix (AE 0) is the wildcard "send me your whole table".
public struct RouteRequest: Hashable, Sendable {
    public var generation: UInt8
    public var prefix: Subnet?

    public init(generation: UInt8 = 0, prefix: Subnet?) {
        self.generation = generation
        self.prefix = prefix
    }

    public var isWildcard: Bool { prefix == nil }

    init(body reader: inout WireReader) throws(WireError) {
        let generation = try reader.u8()
        let ae = try reader.u8()
        let plen = try reader.u8()
        let subnet = try AddressEncoding.readPrefix(ae: ae, plen: plen, from: &reader)
        self.init(generation: generation, prefix: ae == AddressEncoding.wildcard.rawValue ? nil : subnet)
    }

    func writeBody(to out: inout [UInt8]) {
        out.append(generation)
        guard let prefix else {
            out += [AddressEncoding.wildcard.rawValue, 0]
            return
        }
        out.append(AddressEncoding.forSending(prefix).rawValue)
        out.append(prefix.prefixLength)
        AddressEncoding.writePrefix(prefix, to: &out)
    }
}

/// SeqNoRequest TLV (type 10), body length 6 + 40 + prefix bytes (spec §5.2, §5.11).
///
/// ```
/// 0    1      2       4           5          6          46
/// +----+------+-------+-----------+----------+----------+--------------+
/// | AE | plen | seqno | hop count | reserved | routerId | prefix (p B) |
/// +----+------+-------+-----------+----------+----------+--------------+
/// ```
/// Hop count 0 is invalid (Rust rejects the TLV). The router id is the full 40 bytes.
public struct SeqNoRequest: Hashable, Sendable {
    public static let initialHopCount: UInt8 = 64

    public var seqno: SeqNo
    public var hopCount: UInt8
    public var routerId: RouterId
    public var prefix: Subnet

    public init(seqno: SeqNo, hopCount: UInt8 = SeqNoRequest.initialHopCount, routerId: RouterId, prefix: Subnet) {
        self.seqno = seqno
        self.hopCount = hopCount
        self.routerId = routerId
        self.prefix = prefix
    }

    init(body reader: inout WireReader) throws(WireError) {
        let ae = try reader.u8()
        let plen = try reader.u8()
        let seqno = try reader.u16()
        let hopCount = try reader.u8()
        guard hopCount > 0 else { throw .invalidField("SeqNoRequest hop count 0") }
        try reader.skip(1)
        let routerId = try RouterId(reading: &reader)
        let prefix = try AddressEncoding.readPrefix(ae: ae, plen: plen, from: &reader)
        self.init(seqno: SeqNo(seqno), hopCount: hopCount, routerId: routerId, prefix: prefix)
    }

    func writeBody(to out: inout [UInt8]) {
        out.append(AddressEncoding.forSending(prefix).rawValue)
        out.append(prefix.prefixLength)
        out.appendU16(seqno.rawValue)
        out.append(hopCount)
        out.append(0)
        routerId.append(to: &out)
        AddressEncoding.writePrefix(prefix, to: &out)
    }
}

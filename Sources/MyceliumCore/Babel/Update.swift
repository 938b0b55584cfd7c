/// Update TLV (type 8), body length 10 + prefix bytes + 40 (spec §5.2).
///
/// ```
/// 0    1       2      3         4          6       8        10             10+p       50+p
/// +----+-------+------+---------+----------+-------+--------+--------------+----------+
/// | AE | flags | plen | omitted | interval | seqno | metric | prefix (p B) | routerId |
/// +----+-------+------+---------+----------+-------+--------+--------------+----------+
/// ```
/// p = ceil(plen/8). The 40-byte router id is Mycelium's extension (RFC 8966 uses a separate
/// Router-Id TLV). Flags are masked with 0xC0 and carry no meaning. Metric 0xFFFF = retraction.
public struct Update: Hashable, Sendable {
    public static let flagMask: UInt8 = 0xC0

    public var flags: UInt8
    /// Centiseconds.
    public var interval: UInt16
    public var seqno: SeqNo
    public var metric: Metric
    public var subnet: Subnet
    public var routerId: RouterId

    public init(flags: UInt8 = 0, interval: UInt16, seqno: SeqNo, metric: Metric, subnet: Subnet, routerId: RouterId) {
        self.flags = flags & Update.flagMask
        self.interval = interval
        self.seqno = seqno
        self.metric = metric
        self.subnet = subnet
        self.routerId = routerId
    }

    public var isRetraction: Bool { metric.isInfinite }

    init(body reader: inout WireReader) throws(WireError) {
        let ae = try reader.u8()
        let flags = try reader.u8()
        let plen = try reader.u8()
        try reader.skip(1)
        let interval = try reader.u16()
        let seqno = try reader.u16()
        let metric = try reader.u16()
        let subnet = try AddressEncoding.readPrefix(ae: ae, plen: plen, from: &reader)
        let routerId = try RouterId(reading: &reader)
        self.init(flags: flags, interval: interval, seqno: SeqNo(seqno), metric: Metric(metric), subnet: subnet, routerId: routerId)
    }

    func writeBody(to out: inout [UInt8]) {
        out.append(AddressEncoding.forSending(subnet).rawValue)
        out.append(flags)
        out.append(subnet.prefixLength)
        out.append(0)
        out.appendU16(interval)
        out.appendU16(seqno.rawValue)
        out.appendU16(metric.rawValue)
        AddressEncoding.writePrefix(subnet, to: &out)
        routerId.append(to: &out)
    }
}

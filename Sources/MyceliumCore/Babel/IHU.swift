/// IHU ("I heard you") TLV (type 5), body length 6 + address (spec §5.2).
///
/// ```
/// 0    1          2        4           6
/// +----+----------+--------+-----------+---------------------+
/// | AE | reserved | rxcost | interval  | address (per AE)    |
/// +----+----------+--------+-----------+---------------------+
/// ```
/// Rust sends AE 0 (no address) and ignores every field on receipt: the arrival time of the
/// IHU relative to our last Hello is the RTT sample.
public struct IHU: Hashable, Sendable {
    public var rxCost: UInt16
    /// Centiseconds.
    public var interval: UInt16
    public var address: IPAddress?

    public init(rxCost: UInt16, interval: UInt16, address: IPAddress? = nil) {
        self.rxCost = rxCost
        self.interval = interval
        self.address = address
    }

    init(body reader: inout WireReader) throws(WireError) {
        let ae = try reader.u8()
        try reader.skip(1)
        let rxCost = try reader.u16()
        let interval = try reader.u16()
        let address = try AddressEncoding.readAddress(ae: ae, from: &reader)
        self.init(rxCost: rxCost, interval: interval, address: address)
    }

    func writeBody(to out: inout [UInt8]) {
        switch address {
        case nil: out.append(AddressEncoding.wildcard.rawValue)
        case .v4: out.append(AddressEncoding.ipv4.rawValue)
        case .v6: out.append(AddressEncoding.ipv6.rawValue)
        }
        out.append(0)
        out.appendU16(rxCost)
        out.appendU16(interval)
        if let address { out += address.bytes }
    }
}

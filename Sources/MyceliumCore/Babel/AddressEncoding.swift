/// Babel address encodings (spec §5.1), as used inside IHU, Update, RouteRequest, SeqNoRequest.
///
/// | AE | meaning         | prefix bytes on the wire                          |
/// |----|-----------------|---------------------------------------------------|
/// | 0  | wildcard        | none (plen must be 0)                             |
/// | 1  | IPv4            | ceil(plen/8) (decoded, never sent by Rust or us)  |
/// | 2  | IPv6            | ceil(plen/8) (the only one we send)               |
/// | 3  | IPv6 link-local | exactly 8, `fe80::/64` implied (decode only)      |
///
/// No prefix compression: the "omitted" byte is written 0 and ignored on read.
public enum AddressEncoding: UInt8, Sendable {
    case wildcard = 0
    case ipv4 = 1
    case ipv6 = 2
    case ipv6LinkLocal = 3

    static let linkLocalHigh: UInt64 = 0xFE80_0000_0000_0000

    /// The encoding we send for `subnet`: AE 0 only for `::/0`, never AE 3.
    public static func forSending(_ subnet: Subnet) -> AddressEncoding {
        switch subnet.address {
        case .v4: .ipv4
        case .v6: subnet.prefixLength == 0 ? .wildcard : .ipv6
        }
    }

    /// Bytes of prefix that follow for this AE and prefix length.
    func prefixByteCount(_ plen: UInt8) -> Int {
        switch self {
        case .wildcard: 0
        case .ipv4, .ipv6: (Int(plen) + 7) / 8
        case .ipv6LinkLocal: 8
        }
    }

    /// Reads a prefix of `plen` bits. AE 0 yields `::/0`.
    static func readPrefix(ae rawAE: UInt8, plen: UInt8, from reader: inout WireReader) throws(WireError) -> Subnet {
        guard let ae = AddressEncoding(rawValue: rawAE) else { throw .badAddressEncoding(rawAE) }
        switch ae {
        case .wildcard:
            guard plen == 0 else { throw .badPrefixLength(plen) }
            return Subnet(.zero, prefixLength: 0)!
        case .ipv4:
            guard plen <= 32 else { throw .badPrefixLength(plen) }
            var bytes = Array(try reader.take(ae.prefixByteCount(plen)))
            bytes += [UInt8](repeating: 0, count: 4 - bytes.count)
            return Subnet(address: .v4(IPv4Address(bytes: bytes)), prefixLength: plen)!
        case .ipv6:
            guard plen <= 128 else { throw .badPrefixLength(plen) }
            var bytes = Array(try reader.take(ae.prefixByteCount(plen)))
            bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
            return Subnet(IPv6Address(bytes: bytes), prefixLength: plen)!
        case .ipv6LinkLocal:
            guard plen <= 128 else { throw .badPrefixLength(plen) }
            let low = try reader.take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return Subnet(IPv6Address(high: linkLocalHigh, low: low), prefixLength: plen)!
        }
    }

    /// Reads a full address (IHU): AE 0 has none.
    static func readAddress(ae rawAE: UInt8, from reader: inout WireReader) throws(WireError) -> IPAddress? {
        guard let ae = AddressEncoding(rawValue: rawAE) else { throw .badAddressEncoding(rawAE) }
        switch ae {
        case .wildcard: return nil
        case .ipv4: return .v4(IPv4Address(bytes: try reader.take(4)))
        case .ipv6: return .v6(IPv6Address(bytes: try reader.take(16)))
        case .ipv6LinkLocal:
            let low = try reader.take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return .v6(IPv6Address(high: linkLocalHigh, low: low))
        }
    }

    /// Writes the leading ceil(plen/8) bytes of the (already masked) prefix.
    static func writePrefix(_ subnet: Subnet, to out: inout [UInt8]) {
        let count = forSending(subnet).prefixByteCount(subnet.prefixLength)
        out += subnet.address.bytes.prefix(count)
    }
}

/// ICMPv6 error messages the node writes to its TUN (spec §4.3, RFC 4443).
///
/// ```
/// IPv6 header (40)                         ICMPv6 error (8 + quote)
/// +---+----------+------+----+-----+-----+ +------+------+----------+--------+-----------------+
/// |v6 | tc/flow  | plen | 58 | hop | src | | type | code | checksum | unused | original packet |
/// |   |          |      |    | 64  | dst | |      |      |          | (or    | ≤ 1232 bytes    |
/// +---+----------+------+----+-----+-----+ +------+------+----------+--------+-----------------+
/// ```
/// The quote is cut so the whole message fits the IPv6 minimum MTU of 1280 bytes.
public enum ICMPv6 {
    public static let nextHeader: UInt8 = 58
    public static let headerLength = 8
    public static let maxQuote = 1232
    public static let hopLimit: UInt8 = 64

    public enum Message: Hashable, Sendable {
        case destinationUnreachable(DestinationUnreachableCode)
        case timeExceeded

        var typeAndCode: (UInt8, UInt8) {
            switch self {
            case let .destinationUnreachable(code): (1, code.rawValue)
            case .timeExceeded: (3, 0)
            }
        }
    }

    public enum DestinationUnreachableCode: UInt8, Hashable, Sendable {
        case noRoute = 0
        case addressUnreachable = 3
        case sourcePolicyFailed = 5
    }

    /// A complete IPv6 packet carrying the ICMPv6 error, quoting `original`.
    public static func error(_ message: Message, source: IPv6Address, destination: IPv6Address,
                             quoting original: some Collection<UInt8>) -> [UInt8] {
        let quote = original.prefix(maxQuote)
        let icmpLength = headerLength + quote.count
        var out = [UInt8]()
        out.reserveCapacity(IPv6Header.length + icmpLength)
        IPv6Header.write(payloadLength: UInt16(icmpLength), nextHeader: nextHeader, hopLimit: hopLimit,
                         source: source, destination: destination, to: &out)
        let (type, code) = message.typeAndCode
        out += [type, code, 0, 0, 0, 0, 0, 0]
        out += quote
        let sum = checksum(source: source, destination: destination, message: out[IPv6Header.length...])
        out[IPv6Header.length + 2] = UInt8(sum >> 8)
        out[IPv6Header.length + 3] = UInt8(truncatingIfNeeded: sum)
        return out
    }

    /// The RFC 4443 checksum: one's complement sum over the pseudo-header and the message
    /// (with its checksum field zero).
    public static func checksum(source: IPv6Address, destination: IPv6Address, message: ArraySlice<UInt8>) -> UInt16 {
        var sum: UInt64 = 0
        for word in [source.high, source.low, destination.high, destination.low] {
            sum += word >> 48 + (word >> 32 & 0xFFFF) + (word >> 16 & 0xFFFF) + (word & 0xFFFF)
        }
        sum += UInt64(message.count >> 16) + UInt64(message.count & 0xFFFF) + UInt64(nextHeader)
        var i = message.startIndex
        while i + 1 < message.endIndex {
            sum += UInt64(message[i]) << 8 | UInt64(message[i + 1])
            i += 2
        }
        if i < message.endIndex { sum += UInt64(message[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

/// The fixed IPv6 header fields the datapath reads and writes.
/// ```
/// 0        4         12        16         18    20       24             40
/// +--------+---------+---------+----------+-----+--------+-------+-------+
/// | ver=6  | tc/flow | payload | next hdr | hop | source | destination    |
/// +--------+---------+---------+----------+-----+--------+-------+-------+
/// ```
public struct IPv6Header: Hashable, Sendable {
    public static let length = 40
    /// Offset of the hop-limit byte.
    public static let hopLimitOffset = 7

    public var payloadLength: UInt16
    public var nextHeader: UInt8
    public var hopLimit: UInt8
    public var source: IPv6Address
    public var destination: IPv6Address

    /// Nil unless at least 40 bytes with version 6.
    public init?<C: Collection<UInt8>>(_ packet: C) where C.Index == Int {
        guard packet.count >= IPv6Header.length else { return nil }
        let o = packet.startIndex
        guard packet[o] >> 4 == 6 else { return nil }
        payloadLength = UInt16(packet[o + 4]) << 8 | UInt16(packet[o + 5])
        nextHeader = packet[o + 6]
        hopLimit = packet[o + 7]
        source = IPv6Address(bytes: packet[(o + 8)..<(o + 24)])
        destination = IPv6Address(bytes: packet[(o + 24)..<(o + 40)])
    }

    static func write(payloadLength: UInt16, nextHeader: UInt8, hopLimit: UInt8, source: IPv6Address,
                      destination: IPv6Address, to out: inout [UInt8]) {
        out += [0x60, 0, 0, 0]
        out.appendU16(payloadLength)
        out.append(nextHeader)
        out.append(hopLimit)
        source.append(to: &out)
        destination.append(to: &out)
    }
}

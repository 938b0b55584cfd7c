/// Out-of-band ICMP (spec §4.6): how a node that cannot decrypt a packet reports an error to its
/// source. It travels encrypted to the source as user-data type 2; this is its plaintext after
/// the 4-byte user header.
/// ```
/// 0                    16                     56            64
/// +--------------------+----------------------+-------------+----------------------------+
/// | original dest (16) | IPv6 header (40)     | ICMPv6 (8)  | original encrypted payload |
/// |                    | src = reporter's     | type, code, | (ct ‖ tag ‖ nonce), empty  |
/// |                    | prefix::, dst = orig | rest zero   | if it was > 1232 bytes     |
/// |                    | source, hop 64, nh 58|             |                            |
/// +--------------------+----------------------+-------------+----------------------------+
/// ```
public struct OutOfBandICMP: Hashable, Sendable {
    public static let fixedLength = 16 + IPv6Header.length + ICMPv6.headerLength
    public static let maxLength = 1280 + 16

    public var originalDestination: IPv6Address
    /// The reporting node's /64 network address (`prefix::`).
    public var reporter: IPv6Address
    public var originalSource: IPv6Address
    public var type: UInt8
    public var code: UInt8
    /// The original packet's encrypted payload, so the source can decrypt what it sent.
    public var originalPayload: [UInt8]

    public init(message: ICMPv6.Message, reporterSubnet: Subnet, originalSource: IPv6Address,
                originalDestination: IPv6Address, originalPayload: [UInt8]) {
        (type, code) = message.typeAndCode
        self.reporter = reporterSubnet.ipv6 ?? .zero
        self.originalSource = originalSource
        self.originalDestination = originalDestination
        self.originalPayload = originalPayload.count > ICMPv6.maxQuote ? [] : originalPayload
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        guard bytes.count >= OutOfBandICMP.fixedLength else {
            throw .truncated(needed: OutOfBandICMP.fixedLength, available: bytes.count)
        }
        guard bytes.count <= OutOfBandICMP.maxLength else { throw .oversized(length: bytes.count, limit: OutOfBandICMP.maxLength) }
        originalDestination = IPv6Address(bytes: bytes[0..<16])
        guard let header = IPv6Header(bytes[16..<56]) else { throw .invalidField("OOB ICMP inner header is not IPv6") }
        reporter = header.source
        originalSource = header.destination
        type = bytes[56]
        code = bytes[57]
        originalPayload = Array(bytes[OutOfBandICMP.fixedLength...])
    }

    public func encode() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(OutOfBandICMP.fixedLength + originalPayload.count)
        originalDestination.append(to: &out)
        IPv6Header.write(payloadLength: UInt16(ICMPv6.headerLength + originalPayload.count), nextHeader: ICMPv6.nextHeader,
                         hopLimit: ICMPv6.hopLimit, source: reporter, destination: originalSource, to: &out)
        out += [type, code, 0, 0, 0, 0, 0, 0]
        out += originalPayload
        return out
    }

    /// The ICMPv6 packet the source writes to its TUN once it decrypted `originalPacket` (the
    /// IPv6 packet it had sent): from the reporter's `prefix::`, to `localAddress`, with the hop
    /// limit the report arrived with, quoting the original packet.
    public func reconstruct(originalPacket: [UInt8], localAddress: IPv6Address, hopLimit: UInt8) -> [UInt8] {
        let quote = originalPacket.prefix(ICMPv6.maxQuote)
        var out = [UInt8]()
        IPv6Header.write(payloadLength: UInt16(ICMPv6.headerLength + quote.count), nextHeader: ICMPv6.nextHeader,
                         hopLimit: hopLimit, source: reporter, destination: localAddress, to: &out)
        out += [type, code, 0, 0, 0, 0, 0, 0]
        out += quote
        let sum = ICMPv6.checksum(source: reporter, destination: localAddress, message: out[IPv6Header.length...])
        out[IPv6Header.length + 2] = UInt8(sum >> 8)
        out[IPv6Header.length + 3] = UInt8(truncatingIfNeeded: sum)
        return out
    }
}

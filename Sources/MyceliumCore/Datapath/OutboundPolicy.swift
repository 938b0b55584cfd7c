/// What to do with a packet read from the TUN, before any route lookup (spec §4.3).
///
/// Checks, in order: not IPv6 or shorter than 40 bytes → drop; destination in our own /64 →
/// "address unreachable" from our address (the kernel delivers real local addresses itself, so
/// anything reaching us here is unassigned); source outside 400::/7 → "source address failed
/// policy"; hop limit < 2 → "time exceeded". ICMP replies go back to the TUN unencrypted.
public struct OutboundPolicy: Sendable {
    public let nodeAddress: IPv6Address
    public let localSubnet: Subnet

    public init(nodeAddress: IPv6Address) {
        self.nodeAddress = nodeAddress
        self.localSubnet = Subnet.slash64(of: nodeAddress)
    }

    public enum Verdict: Hashable, Sendable {
        /// Not an IPv6 packet we can handle: count and drop.
        case drop
        /// Write this ICMPv6 packet back to the TUN.
        case reply([UInt8])
        /// Look up a route for `destination` and send with `hopLimit` (copied from the header).
        case send(IPv6Header)
    }

    public func check(_ packet: [UInt8]) -> Verdict {
        guard let header = IPv6Header(packet) else { return .drop }
        if localSubnet.contains(header.destination) {
            return .reply(ICMPv6.error(.destinationUnreachable(.addressUnreachable), source: nodeAddress,
                                       destination: header.source, quoting: packet))
        }
        guard Subnet.overlay.contains(header.source) else {
            return .reply(ICMPv6.error(.destinationUnreachable(.sourcePolicyFailed), source: nodeAddress,
                                       destination: header.source, quoting: packet))
        }
        guard header.hopLimit >= 2 else {
            return .reply(ICMPv6.error(.timeExceeded, source: nodeAddress, destination: header.source, quoting: packet))
        }
        return .send(header)
    }

    /// The "no route" reply for a packet whose query failed or whose queue was full. Rust uses
    /// the original source as both source and destination of this ICMP (spec §4.3).
    public static func noRoute(for packet: [UInt8]) -> [UInt8]? {
        guard let header = IPv6Header(packet) else { return nil }
        return ICMPv6.error(.destinationUnreachable(.noRoute), source: header.source, destination: header.source, quoting: packet)
    }
}

/// Hop-limit handling of a data packet at every node, the originator included (spec §4.4).
public enum HopLimit {
    public enum Decision: Hashable, Sendable {
        /// Below 2: report "time exceeded" to the source (out of band) and drop.
        case expired
        /// Continue with this (decremented) hop limit.
        case forward(UInt8)
    }

    public static func step(_ hopLimit: UInt8) -> Decision {
        hopLimit < 2 ? .expired : .forward(hopLimit - 1)
    }

    /// On local delivery the IPv6 header's hop limit becomes the data packet's (spec §4.5).
    public static func stamp(_ packet: inout [UInt8], hopLimit: UInt8) {
        guard packet.count >= IPv6Header.length else { return }
        packet[IPv6Header.hopLimitOffset] = hopLimit
    }
}

/// What a decrypted packet must satisfy before it reaches the TUN (our hardening of spec §4.5
/// and §4.6; Rust checks none of it).
///
/// The outer data header is not authenticated, but the key that opened the payload is the one
/// shared with the owner of the outer *source* /64, so a payload that opens proves who sealed it.
/// The inner IPv6 header, however, says whatever its sealer wrote. Rust copies the inner
/// addresses into the outer header when it sends, so honest traffic always has
/// inner source == outer source and inner destination == outer destination; anything else is
/// a node spoofing a source to our applications, or using us as a relay into the host's other
/// networks (with forwarding on, the kernel would route an inner destination outside our /64).
public enum InboundPolicy {
    public enum Verdict: Hashable, Sendable {
        case deliver
        /// Shorter than an IPv6 header, or not version 6.
        case malformed
        /// The inner source is not the outer source whose key opened the packet.
        case spoofedSource
        /// The inner destination is not the outer destination (which is in our /64).
        case foreignDestination
    }

    /// Checks a decrypted L3 packet (user-data type 0) against the outer header it came in.
    /// Concrete overloads, not one generic entry: called per packet from another module, a
    /// generic would run unspecialised, with runtime metadata lookups on every call.
    public static func check(inner: [UInt8], outerSource: IPv6Address, outerDestination: IPv6Address) -> Verdict {
        verdict(IPv6Header(inner), outerSource: outerSource, outerDestination: outerDestination)
    }

    public static func check(inner: ArraySlice<UInt8>, outerSource: IPv6Address, outerDestination: IPv6Address) -> Verdict {
        verdict(IPv6Header(inner), outerSource: outerSource, outerDestination: outerDestination)
    }

    private static func verdict(_ header: IPv6Header?, outerSource: IPv6Address, outerDestination: IPv6Address) -> Verdict {
        guard let header else { return .malformed }
        guard header.source == outerSource else { return .spoofedSource }
        guard header.destination == outerDestination else { return .foreignDestination }
        return .deliver
    }

    /// The outer check of an out-of-band ICMP report, before its embedded payload is opened:
    /// it must come from the reporter's own `prefix::` (the address the reporter's key opened it
    /// under), name a packet that came from our /64, and be an ICMPv6 error (Time Exceeded or
    /// Destination Unreachable, the only two Rust sends) — never an echo or anything else a
    /// local application would act on.
    public static func checkReport(_ report: OutOfBandICMP, outerSource: IPv6Address, localSubnet: Subnet) -> Bool {
        report.reporter == outerSource
            && Subnet.slash64(of: outerSource).ipv6 == outerSource
            && localSubnet.contains(report.originalSource)
            && !localSubnet.contains(report.originalDestination)
            && (report.type == 1 || report.type == 3)
    }

    /// The embedded original, once opened with the key of its destination: an IPv6 packet we
    /// sent (source in our /64, the report's original source) to the report's original
    /// destination. Anything else was not ours to be told about.
    public static func checkReportedPacket(_ original: ArraySlice<UInt8>, report: OutOfBandICMP) -> Bool {
        guard let header = IPv6Header(original) else { return false }
        return header.source == report.originalSource && header.destination == report.originalDestination
    }
}

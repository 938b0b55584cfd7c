public import MyceliumCore
// Counters and limits of the data plane: plain integers on the owning loop, read by the API.

/// Datapath counters.
public struct DatapathStats: Hashable, Sendable {
    public var tunPacketsIn: UInt64 = 0
    public var tunBytesIn: UInt64 = 0
    public var tunPacketsOut: UInt64 = 0
    public var tunBytesOut: UInt64 = 0
    public var peerPacketsIn: UInt64 = 0
    public var peerPacketsOut: UInt64 = 0
    public var delivered: UInt64 = 0
    public var queued: UInt64 = 0
    public var droppedMalformed: UInt64 = 0
    public var droppedNoRoute: UInt64 = 0
    public var droppedNoKey: UInt64 = 0
    public var droppedHopLimit: UInt64 = 0
    public var droppedQueueFull: UInt64 = 0
    public var droppedTunFull: UInt64 = 0
    public var droppedNoTun: UInt64 = 0
    public var decryptFailures: UInt64 = 0
    /// Message-bus packets opened for us, and sealed and sent by us (spec §7).
    public var messagesIn: UInt64 = 0
    public var messagesOut: UInt64 = 0
    /// Message-bus packets not sent: no route (or no session yet) to their destination; the
    /// message stack sends them again.
    public var messagesNoRoute: UInt64 = 0
    /// Destination (or, for us, source) outside 400::/7, or a source in our own /64.
    public var droppedUnroutable: UInt64 = 0
    /// Decrypted packets whose inner header or OOB report contradicts the outer header.
    public var droppedSpoofed: UInt64 = 0
    /// Data for a peer whose outbox is above its high-water mark.
    public var droppedPeerBusy: UInt64 = 0
    /// ICMPv6 errors and out-of-band reports not sent: over their rate.
    public var icmpRateLimited: UInt64 = 0
    /// Packets the kernel dropped in the TUN's queue while the loop was behind (its TX drops;
    /// filled in by the node when the counters are read).
    public var droppedTunBacklog: UInt64 = 0
    public var cipherEvictions: UInt64 = 0
    /// Packet arrays allocated because the node's pool had none free (`PacketPool`; filled in
    /// by the node): flat in steady state.
    public var bufferAllocations: UInt64 = 0
    /// Packet arrays waiting in the pool for reuse.
    public var buffersPooled = 0
    /// TUN reads that were GSO super-packets, split into segments (offloads on).
    public var tunSuperPacketsIn: UInt64 = 0
    /// Segments written to the TUN inside coalesced (GRO) super-packets (offloads on).
    public var tunSegmentsCoalesced: UInt64 = 0
    /// Static-scheme packets whose nonce the sender had already used (docs/sessions.md).
    public var replaysDropped: UInt64 = 0
    /// Static-scheme data from a peer we have a session with (a downgrade): refused.
    public var downgradesRefused: UInt64 = 0
    /// Packets with no session to travel in where static would be refused: held for a peer
    /// that never answered (`--require-sessions`), or with the handshake rate exhausted.
    public var droppedNoSession: UInt64 = 0
    /// Handshake messages received with sessions off (dropped unanswered, as Rust does).
    public var sessionMessagesIgnored: UInt64 = 0
    /// The session table's counters and gauges, filled in by `DatapathCore.report`.
    public var sessions = SessionTable.Counters()
    public var sessionsUp = 0
    /// Static-scheme replay state: senders and nonce fingerprints held.
    public var replaySenders = 0
    public var replayFingerprints = 0

    public init() {}

}

/// The datapath's own limits (not protocol constants; docs/security.md).
public enum DatapathLimits {
    /// Peers whose AES-GCM context is kept.
    public static let cipherCache = 4096
    /// ICMPv6 errors written to the TUN: burst, then per second.
    public static let tunICMPBurst = 100
    public static let tunICMPPerSecond = 100
    /// Out-of-band ICMP reports sent to sources of packets we could not forward.
    public static let outOfBandBurst = 50
    public static let outOfBandPerSecond = 10
    /// TUN writes held for coalescing before they are flushed regardless of the batch's end.
    public static let tunWriteBatch = 512
    /// Packets held for a handshake with `--require-sessions`: 64 per peer, 4096 in all.
    public static let sessionWait = PacketQueueLimits(perSubnetPackets: 64, totalPackets: 4096,
                                                      perSubnetBytes: 64 * 1500, totalBytes: 4096 * 1500)
}

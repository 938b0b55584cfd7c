/// The message stack's protocol constants (spec §7.2, §7.3): what Rust nodes expect of us.
public enum MessageProtocol {
    /// Chunk size of Rust's sender; a receiver expects ceil(length / 1300) chunk slots.
    public static let chunkSize = 1300
    /// Rust receivers refuse chunks shorter than this unless they claim the last index of a
    /// 250-byte split (spec §7.3, "bug?"): we never send one except as the only chunk.
    public static let minimumChunkSize = 250
    /// INIT, unacknowledged chunks and DONE are sent again after this long.
    public static let retransmitMs: Int64 = 100
    /// A message not received by then is aborted; its status is forgotten as long after.
    public static let sendWindowMs: Int64 = 300_000
    public static let maxTopicLength = 255
    /// A forward socket must take the message and answer within this.
    public static let socketReplyTimeoutMs: Int64 = 5_000

    /// Chunk slots a receiver keeps for a message of `length` bytes.
    public static func chunkCount(length: Int) -> Int { (length + chunkSize - 1) / chunkSize }
}

/// Bounds on what the message stack holds (ours, not Rust's: docs/messages.md). A push over a
/// limit is refused with an error; a packet over one is dropped and counted.
public struct MessageLimits: Sendable {
    /// Largest message we send or accept.
    public var maxMessageSize = 8 << 20
    /// Messages being sent at once, and their bytes.
    public var maxSending = 256
    public var maxSendingBytes = 128 << 20
    /// Finished outbound messages whose status is kept (the oldest is forgotten first).
    public var maxStatus = 16_384
    /// Inbound messages being received at once, and the lengths they announced.
    public var maxPending = 256
    public var maxPendingBytes = 64 << 20
    /// Received messages waiting to be read, and their bytes.
    public var maxInbox = 16_384
    public var maxInboxBytes = 128 << 20
    /// Chunks of one message sent and not yet acknowledged (Rust sends them all at once, which
    /// a peer's bounded outbox would drop; acknowledgements clock out the rest).
    public var chunksInFlight = 64
    /// An inbound message with no packet for this long is dropped (Rust keeps it forever).
    public var pendingIdleMs: Int64 = 300_000
    /// Completed inbound messages remembered, so a repeated INIT is ignored and a repeated DONE
    /// is acknowledged again instead of leaving the sender retrying until its deadline.
    public var completedMemory = 4_096

    public init() {}
    public static let standard = MessageLimits()
}

/// Message stack counters (`mycelium_messages_*`).
public struct MessageStats: Hashable, Sendable {
    /// Messages pushed and accepted for sending.
    public var sent: UInt64 = 0
    /// Messages whose DONE the receiver acknowledged.
    public var delivered: UInt64 = 0
    /// Messages received completely.
    public var received: UInt64 = 0
    /// Packets sent again (INIT, chunks, DONE) after no acknowledgement.
    public var retransmitted: UInt64 = 0
    /// Outbound messages aborted at their deadline, and inbound ones dropped as idle or aborted.
    public var expired: UInt64 = 0
    /// Pushes refused (limits, topic length, size).
    public var refusedPush: UInt64 = 0
    /// Inbound messages refused by a topic's allow list.
    public var refusedTopic: UInt64 = 0
    /// Inbound messages refused by a limit (size, pending, inbox).
    public var refusedFull: UInt64 = 0
    /// Message packets that did not decode or contradicted the message they named.
    public var malformed: UInt64 = 0
    /// Received messages whose checksum or size did not match.
    public var corrupt: UInt64 = 0
    /// Messages handed to a topic's forward socket.
    public var forwarded: UInt64 = 0

    public init() {}
}

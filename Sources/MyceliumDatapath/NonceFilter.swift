public import MyceliumCore
public import MyceliumRouting

/// Replay protection for the static scheme (spec §4.2), Rust senders included: their nonces are
/// random, so a nonce accepted once from a sender is refused again while it is remembered.
///
/// Per sender two generations of 64-bit nonce fingerprints (the first 8 of the 12 random bytes;
/// two legitimate nonces share one with odds of about n²/2⁶⁵). The current generation takes new
/// nonces until it holds `perGeneration` of them or is `spanMs` old; it then becomes the
/// previous one and the oldest is forgotten; a generation also stops counting two spans after its
/// start. A nonce is therefore remembered for at least **min(spanMs, perGeneration packets of
/// that sender)** and at most 2 × spanMs. Senders are
/// kept in an LRU of `senders`; an evicted sender starts afresh (counted).
///
/// Only authenticated packets are recorded (`record` after a successful open), so forgeries
/// cannot fill a sender's generations or evict the sender.
public struct NonceFilter {
    public struct Limits: Sendable {
        public var senders: Int
        public var perGeneration: Int
        public var spanMs: Int64

        public init(senders: Int, perGeneration: Int, spanMs: Int64) {
            self.senders = senders
            self.perGeneration = perGeneration
            self.spanMs = spanMs
        }

        /// Worst case ≈ 16 bytes per fingerprint (hash-set slots): 64 MiB measured with 1000
        /// senders each holding two full generations (`bench/sessions.sh`); 0.3 MiB with 10 each.
        public static let standard = Limits(senders: 1024, perGeneration: 2048, spanMs: 10_000)
    }

    struct Generations {
        var current: Set<UInt64> = []
        var previous: Set<UInt64> = []
        var started: Int64
        var previousStarted: Int64 = .min / 2
    }

    public let limits: Limits
    private var senders: LRUCache<PublicKey, Generations>
    public private(set) var evictions: UInt64 = 0

    public init(limits: Limits = .standard) {
        self.limits = limits
        senders = LRUCache(capacity: limits.senders)
    }

    public var senderCount: Int { senders.count }
    /// Fingerprints held, all senders (memory report).
    public var fingerprintCount: Int {
        var n = 0
        senders.forEachValue { n += $0.current.count + $0.previous.count }
        return n
    }

    /// The fingerprint of a static payload's nonce, if it has one.
    public static func fingerprint(of payload: [UInt8]) -> UInt64? {
        guard payload.count >= EncryptedPayload.minimumLength else { return nil }
        var r = WireReader(payload, start: payload.count - EncryptedPayload.nonceLength, end: payload.count)
        return try? r.u64()
    }

    /// Whether the sender's nonce was already accepted (not yet forgotten).
    public func seen(_ fingerprint: UInt64, from sender: PublicKey, now: Instant) -> Bool {
        guard let g = senders.peek(sender) else { return false }
        // A generation counts for two spans from its start: rotation happens only when a nonce
        // is recorded, so a quiet sender's generations age here.
        let t = now.milliseconds, span2 = 2 * limits.spanMs
        return (t - g.started < span2 && g.current.contains(fingerprint))
            || (t - g.previousStarted < span2 && g.previous.contains(fingerprint))
    }

    /// Remembers an authenticated packet's nonce.
    public mutating func record(_ fingerprint: UInt64, from sender: PublicKey, now: Instant) {
        let limits = self.limits
        let inserted = senders.modify(sender, default: Generations(started: now.milliseconds)) { g in
            if g.current.count >= limits.perGeneration || now.milliseconds - g.started >= limits.spanMs {
                g.previous = g.current
                g.previousStarted = g.started
                g.current.removeAll(keepingCapacity: true)
                g.started = now.milliseconds
                // Its two spans are over: no need to hold it.
                if now.milliseconds - g.previousStarted >= 2 * limits.spanMs { g.previous.removeAll() }
            }
            g.current.insert(fingerprint)
        }
        if inserted.evicted != nil { evictions += 1 }
    }
}

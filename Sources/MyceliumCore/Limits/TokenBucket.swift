/// A token bucket on a clock it does not own: `now` (milliseconds, monotonic) comes with every
/// call, so the router, the datapath and tests share it on real or virtual time.
///
/// It starts full. `take(now:)` refills by the time elapsed since the last call, capped at
/// `capacity`, then spends one token if there is one. A clock that goes backwards refills
/// nothing (never a trap, never a negative balance).
public struct TokenBucket: Sendable, Hashable {
    public let capacity: Double
    /// Tokens added per millisecond.
    public let refillPerMs: Double
    private var tokens: Double
    private var last: Int64

    /// `rate` tokens every `perMs` milliseconds, at most `burst` saved up.
    public init(burst: Int, rate: Int, perMs: Int64, now: Int64 = 0) {
        precondition(burst > 0 && rate > 0 && perMs > 0, "a token bucket needs a positive burst and rate")
        capacity = Double(burst)
        refillPerMs = Double(rate) / Double(perMs)
        tokens = capacity
        last = now
    }

    /// Spends one token if one is available at `now`.
    public mutating func take(now: Int64) -> Bool {
        refill(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whole tokens available at `now` (for tests and inspection).
    public mutating func available(now: Int64) -> Int {
        refill(now: now)
        return Int(tokens)
    }

    private mutating func refill(now: Int64) {
        guard now > last else { return }
        // Subtraction of two clock readings cannot overflow in practice, but a hostile or
        // wrapped clock must not trap: compute the gap in Double.
        let elapsed = Double(now) - Double(last)
        tokens = min(capacity, tokens + elapsed * refillPerMs)
        last = now
    }
}

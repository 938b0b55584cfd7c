/// The sliding replay window of a session's receive direction (RFC 6479): counters more than
/// `size` below the highest accepted one are too old; inside the window a bitmap remembers
/// which were seen. Fixed memory (32 × 64 bits), no allocation after `init`.
///
/// Check (`isFresh`) before decrypting, `accept` after authentication: a forged packet can
/// neither advance the window nor mark a counter.
public struct ReplayWindow: Sendable {
    static let blockBits = 64
    static let blocks = 32
    /// Counters accepted below the highest one: (blocks − 1) × 64 (one block is being reused).
    public static let size: UInt64 = UInt64((blocks - 1) * blockBits)

    private var bitmap = [UInt64](repeating: 0, count: blocks)
    /// The highest counter accepted; nil before the first.
    public private(set) var highest: UInt64?

    public init() {}

    /// Whether `counter` would be accepted now.
    public func isFresh(_ counter: UInt64) -> Bool {
        guard let highest else { return true }
        if counter > highest { return true }
        if highest - counter > Self.size { return false }
        return bitmap[Self.block(counter)] & Self.bit(counter) == 0
    }

    /// Marks `counter` seen; false (and nothing changes) when it is a replay or too old.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard isFresh(counter) else { return false }
        if let highest, counter > highest {
            // Clear the blocks the window slides over (all of them after a long jump).
            let from = highest / UInt64(Self.blockBits), to = counter / UInt64(Self.blockBits)
            let steps = min(to - from, UInt64(Self.blocks))
            if steps > 0 {
                for i in 1...steps { bitmap[Int((from + i) % UInt64(Self.blocks))] = 0 }
            }
            self.highest = counter
        } else if highest == nil {
            self.highest = counter
        }
        bitmap[Self.block(counter)] |= Self.bit(counter)
        return true
    }

    private static func block(_ c: UInt64) -> Int { Int((c / UInt64(blockBits)) % UInt64(blocks)) }
    private static func bit(_ c: UInt64) -> UInt64 { 1 << (c % UInt64(blockBits)) }
}

public import Logging
import Synchronization

/// Audit lines for refused peers, dropped lies and limits hit, rate-limited themselves: at most
/// `linesPerWindow` lines per kind in each `windowMs`; what was held back is counted and said in
/// the first line of the next window, so a flood of lies cannot flood the journal.
///
/// Thread-safe (a `Mutex` around a small table): peers, the datapath and discovery log from their
/// own threads.
public final class AuditLog: Sendable {
    public static let linesPerWindow = 5
    public static let windowMs: Int64 = 10_000

    private struct Kind {
        var windowStart: Int64
        var lines = 0
        var suppressed = 0
    }

    private let logger: Logger
    private let kinds = Mutex<[String: Kind]>([:])
    private let clock: @Sendable () -> Int64

    /// `clock` is monotonic milliseconds (the router's clock in the node, a virtual one in tests).
    public init(logger: Logger, clock: @escaping @Sendable () -> Int64) {
        self.logger = logger
        self.clock = clock
    }

    /// Logs `message` for `kind` (a short stable name such as "rate-limited") unless this kind
    /// already said `linesPerWindow` lines in the current window. Returns whether it was logged.
    @discardableResult
    public func record(_ kind: String, _ message: @autoclosure () -> String, metadata: Logger.Metadata = [:]) -> Bool {
        let now = clock()
        let verdict: (log: Bool, held: Int) = kinds.withLock { table in
            var k = table[kind] ?? Kind(windowStart: now)
            var held = 0
            if now - k.windowStart >= Self.windowMs {
                held = k.suppressed
                k = Kind(windowStart: now)
            }
            if k.lines < Self.linesPerWindow {
                k.lines += 1
                table[kind] = k
                return (true, held)
            }
            k.suppressed += 1
            table[kind] = k
            return (false, 0)
        }
        guard verdict.log else { return false }
        var meta = metadata
        meta["audit"] = "\(kind)"
        if verdict.held > 0 { meta["heldBack"] = "\(verdict.held) more in the previous \(Self.windowMs / 1000) s" }
        logger.warning("\(message())", metadata: meta)
        return true
    }
}

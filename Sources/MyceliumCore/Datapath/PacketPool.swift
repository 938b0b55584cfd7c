/// Packet arrays reused from one packet to the next, so that in steady state a packet costs no
/// allocation: the TUN reader, the GSO splitter and the peers' frame decoders take arrays from
/// here; the datapath gives them back once their bytes are written (to a peer's outbox or the
/// TUN).
///
/// Swift arrays keep this safe: a buffer given back while something else still holds it is not
/// reused in place (emptying a shared array allocates a fresh one), it only costs that
/// allocation. Buffers are `bufferCapacity` bytes (an MTU-sized packet with its seal room, or a
/// frame's payload); larger ones (GRO super-packets, jumbo frames) are not kept.
///
/// Bounded: at most `limit` buffers, each under 2 × `bufferCapacity` (4 MiB at the default; 2 MiB
/// in steady state) wait here; beyond it they are freed.
/// One owner: the datapath's loop (everything that takes or gives back runs there).
public final class PacketPool {
    /// Enough for a 1400-byte packet with its seal room and a frame's payload of the same.
    public static let bufferCapacity = 2048
    public static let defaultLimit = 1024

    public let limit: Int
    // `allocations`: arrays allocated because none was free (or the packet was larger than a
    // pooled buffer). Not counted: the new buffer `recycle` gets for an array something else
    // still holds.
    //
    // Touched twice per packet: in release builds exempt from run-time exclusivity checks,
    // sound because the pool has one owner (its loop) and no method calls out while it holds
    // an access. Debug builds (the tests) keep the checks.
    #if DEBUG
    private var free: [[UInt8]] = []
    public private(set) var allocations: UInt64 = 0
    #else
    @exclusivity(unchecked) private var free: [[UInt8]] = []
    @exclusivity(unchecked) public private(set) var allocations: UInt64 = 0
    #endif

    public init(limit: Int = PacketPool.defaultLimit) {
        self.limit = limit
        free.reserveCapacity(limit)
    }

    /// Buffers waiting to be reused.
    public var count: Int { free.count }

    /// An empty array with room for `capacity` bytes.
    public func take(capacity: Int) -> [UInt8] {
        if capacity <= Self.bufferCapacity, let buffer = free.popLast() { return buffer }
        allocations += 1
        var buffer: [UInt8] = []
        buffer.reserveCapacity(max(capacity, Self.bufferCapacity))
        return buffer
    }

    /// A copy of `bytes` with `room` spare bytes of capacity.
    public func copy(_ bytes: UnsafeRawBufferPointer, room: Int = 0) -> [UInt8] {
        var buffer = take(capacity: bytes.count + room)
        buffer.append(contentsOf: bytes)
        return buffer
    }

    /// Takes `buffer` back for reuse; its contents are dropped.
    public func recycle(_ buffer: consuming [UInt8]) {
        guard free.count < limit, buffer.capacity >= Self.bufferCapacity, buffer.capacity < 2 * Self.bufferCapacity else { return }
        buffer.removeAll(keepingCapacity: true)
        free.append(buffer)
    }
}

public import NIOCore

/// The buffers peer connections write their batches into, reused once the channel has sent
/// them.
///
/// A batch goes down the pipeline as a `ByteBuffer`; NIO holds it until the socket took its
/// bytes, then lets go. The pool keeps one more reference to each batch handed out, and gives
/// a buffer out again only when that reference is the last one (NIO is done with it), so a
/// batch never writes into bytes still waiting for the socket. A TUN batch of 64 segments
/// fills more than one 64 KiB batch, so one spare per connection was not enough.
///
/// Bounded: at most `limit` buffers are kept, each of at most `maxCapacity` bytes (the pool
/// of a loop holds at most 8 × 128 KiB); others are left to be freed.
/// One owner: the loop of the connections that share it (asserted by their handlers).
public final class BatchBufferPool {
    public let limit: Int
    public let maxCapacity: Int
    private var buffers: [ByteBuffer] = []
    /// Buffers allocated because none was free.
    public private(set) var allocations: UInt64 = 0

    public init(limit: Int = 8, maxCapacity: Int = 128 << 10) {
        self.limit = limit
        self.maxCapacity = maxCapacity
        buffers.reserveCapacity(limit)
    }

    /// An empty buffer with room for at least `minimumCapacity` bytes: a kept one nobody else
    /// holds any more, or a new one of `newCapacity` bytes (at least `minimumCapacity`).
    public func take(minimumCapacity: Int, newCapacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        for i in buffers.indices where buffers[i].capacity >= minimumCapacity {
            // In place: a copy of the element would itself be a second reference.
            let free: Void? = buffers[i].modifyIfUniquelyOwned { $0.clear() }
            if free != nil { return buffers.remove(at: i) }
        }
        allocations += 1
        return allocator.buffer(capacity: max(minimumCapacity, newCapacity))
    }

    /// Keeps a reference to a batch being handed to a channel, to reuse it after the channel.
    public func keep(_ batch: ByteBuffer) {
        guard batch.capacity <= maxCapacity else { return }
        if buffers.count == limit {
            // Full: the oldest goes (the most likely to be free is the one to keep, but any
            // will do; this only happens while the socket cannot take what we write).
            buffers.removeFirst()
        }
        buffers.append(batch)
    }

    /// Buffers kept (in flight or free).
    public var count: Int { buffers.count }
}

#if canImport(Glibc)
import Glibc
#endif
import MyceliumCore
import Synchronization

/// Subnet owners' public keys, each stored once and named in the route table by a 4-byte
/// reference instead of 32 bytes per subnet.
///
/// A router holds one route slot per subnet of the network, so the owner's key was an eighth of
/// a node's memory per route, and a simulation of n routers held the same n keys n times.
/// Append-only: a reference stays valid for the pool's life, so copies of a router (a value)
/// that share the pool stay correct whatever either of them appends. The router bounds its own
/// pool by moving to a fresh one when dead keys outnumber its subnets (`Router.compactOwners`);
/// a pool shared by many routers (the simulator's) is never compacted, and holds one key per
/// node.
///
/// ```
/// chunks: [ ptr₀ | ptr₁ | … | nil … ]  (at most 2¹⁴, written once each, under the lock)
///            │
///            ▼
///          [ key 0 | key 1 | … | key 1023 ]   reference r → chunk r >> 10, place r & 1023
/// ```
///
/// Reads take no lock: a reference is handed out (under the lock) only after its key is
/// written, and a key's place is never rewritten.
public final class OwnerKeys: @unchecked Sendable {  // unchecked: `chunks` is written only under `state`'s lock, before any reference to the written place exists (see above)
    /// A key's name in this pool.
    public struct Ref: Equatable, Sendable {
        let raw: UInt32
    }

    private static let chunkShift = 10
    private static let chunkSize = 1 << chunkShift
    /// 16 M keys: a router's pool holds at most twice its subnets plus 1024.
    private static let maxChunks = 1 << 14

    private let chunks: UnsafeMutablePointer<UnsafeMutablePointer<PublicKey>?>
    private let state = Mutex(State())
    /// Whether the router that holds this pool may replace it with a compacted one: false for a
    /// pool shared between routers.
    let compactable: Bool

    private struct State {
        var index: [PublicKey: UInt32] = [:]
        var count = 0
    }

    /// `shared`: whether several routers will use this pool (then no router compacts it).
    public init(shared: Bool = false) {
        compactable = !shared
        // Zeroed by calloc (nil is all zero bits), not by writing: the directory's 128 KiB are
        // mapped lazily, so a router's pool, which uses a few hundred places at most, keeps
        // only the pages it touches resident.
        guard let raw = calloc(Self.maxChunks, MemoryLayout<UnsafeMutablePointer<PublicKey>?>.stride) else {
            fatalError("calloc failed: out of memory")
        }
        chunks = raw.bindMemory(to: UnsafeMutablePointer<PublicKey>?.self, capacity: Self.maxChunks)
    }

    deinit {
        let used = (state.withLock { $0.count } + Self.chunkSize - 1) >> Self.chunkShift
        for c in 0..<used {
            chunks[c]!.deinitialize(count: Self.chunkSize)
            chunks[c]!.deallocate()
        }
        free(chunks)
    }

    /// Keys held, live or not.
    public var count: Int { state.withLock { $0.count } }

    /// The reference of `key`, added if new.
    func ref(for key: PublicKey) -> Ref {
        state.withLock { s in
            if let known = s.index[key] { return Ref(raw: known) }
            let n = s.count
            precondition(n < Self.maxChunks * Self.chunkSize, "owner key pool full")
            let c = n >> Self.chunkShift
            if chunks[c] == nil {
                let chunk = UnsafeMutablePointer<PublicKey>.allocate(capacity: Self.chunkSize)
                chunk.initialize(repeating: SubnetRoutes.noOwner, count: Self.chunkSize)
                chunks[c] = chunk
            }
            chunks[c]![n & (Self.chunkSize - 1)] = key
            s.index[key] = UInt32(n)
            s.count = n + 1
            return Ref(raw: UInt32(n))
        }
    }

    subscript(ref: Ref) -> PublicKey {
        chunks[Int(ref.raw >> UInt32(Self.chunkShift))]![Int(ref.raw) & (Self.chunkSize - 1)]
    }
}

/// Something whose size a queue charges against its byte limit.
public protocol ByteSized {
    var byteCount: Int { get }
    /// A copy holding no more memory than `byteCount` says (a pooled 2 KiB array holding a
    /// 60-byte packet would make the byte limits lie).
    func compacted() -> Self
}

extension Array: ByteSized where Element == UInt8 {
    public var byteCount: Int { count }
    public func compacted() -> [UInt8] { withUnsafeBufferPointer { Array($0) } }
}

extension DataPacket: ByteSized {
    public var byteCount: Int { DataPacket.headerLength + payload.count }
    public func compacted() -> DataPacket {
        var copy = self
        copy.payload = payload.compacted()
        return copy
    }
}

/// Packets waiting for a route, per destination /64, with per-subnet and global limits in
/// packets (spec §4.3: 10 000 per /64 and 1 000 000 in all for packets from the TUN; §4.5: 100
/// and 10 000 for received packets waiting for the sender's key) and, beyond Rust, in bytes:
/// a million 1400-byte packets would be 1.4 GB, so the byte limits are what bound memory.
///
/// Unlike Rust, received packets are also released or failed when their query ends, so the
/// inbound queue cannot fill up with packets for a subnet nobody answers for (spec §4.5 bug?).
public struct PacketQueue<Packet: ByteSized & Sendable>: Sendable {
    public enum Outcome: Hashable, Sendable {
        case queued
        case subnetFull
        case full
    }

    public typealias Limits = PacketQueueLimits

    public let limits: Limits
    public private(set) var count = 0
    public private(set) var bytes = 0
    private var queues: [Subnet: (packets: [Packet], bytes: Int)] = [:]

    public init(limits: Limits) {
        self.limits = limits
    }

    public mutating func enqueue(_ packet: Packet, for subnet: Subnet) -> Outcome {
        let size = packet.byteCount
        guard count < limits.totalPackets, bytes + size <= limits.totalBytes else { return .full }
        let queued = queues[subnet]
        guard (queued?.packets.count ?? 0) < limits.perSubnetPackets,
              (queued?.bytes ?? 0) + size <= limits.perSubnetBytes else { return .subnetFull }
        // The slow path: the copy lets the packet's (pooled) array go.
        queues[subnet, default: ([], 0)].packets.append(packet.compacted())
        queues[subnet]!.bytes += size
        count += 1
        bytes += size
        return .queued
    }

    /// Removes and returns the packets for `subnet`, oldest first (route acquired, or failed).
    public mutating func take(_ subnet: Subnet) -> [Packet] {
        guard let queued = queues.removeValue(forKey: subnet) else { return [] }
        count -= queued.packets.count
        bytes -= queued.bytes
        return queued.packets
    }

    public func count(for subnet: Subnet) -> Int { queues[subnet]?.packets.count ?? 0 }

    /// The subnets with packets waiting, in no particular order (not sorted: read on every new
    /// forwarding table while packets wait).
    public var subnets: [Subnet] { Array(queues.keys) }
}

/// How much a `PacketQueue` may hold.
public struct PacketQueueLimits: Hashable, Sendable {
    public var perSubnetPackets: Int
    public var totalPackets: Int
    public var perSubnetBytes: Int
    public var totalBytes: Int

    public init(perSubnetPackets: Int, totalPackets: Int, perSubnetBytes: Int, totalBytes: Int) {
        self.perSubnetPackets = perSubnetPackets
        self.totalPackets = totalPackets
        self.perSubnetBytes = perSubnetBytes
        self.totalBytes = totalBytes
    }

    /// Plaintext packets read from the TUN, waiting for a route (spec's counts; 32 MiB).
    public static let outbound = PacketQueueLimits(perSubnetPackets: 10_000, totalPackets: 1_000_000,
                                        perSubnetBytes: 2 << 20, totalBytes: 32 << 20)
    /// Encrypted packets from peers to forward, waiting for a route: peers fill this one,
    /// so it gets the inbound counts (Rust uses the TUN's) and 8 MiB.
    public static let forward = PacketQueueLimits(perSubnetPackets: 100, totalPackets: 10_000,
                                       perSubnetBytes: 256 << 10, totalBytes: 8 << 20)
    /// Encrypted packets for us, waiting for the sender's key (spec's counts; 8 MiB).
    public static let inbound = PacketQueueLimits(perSubnetPackets: 100, totalPackets: 10_000,
                                       perSubnetBytes: 256 << 10, totalBytes: 8 << 20)
}

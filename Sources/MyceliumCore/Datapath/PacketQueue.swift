/// Packets waiting for a route, per destination /64, with a per-subnet and a global limit
/// (spec §4.3: 10 000 per /64 and 1 000 000 in all for packets from the TUN; §4.5: 100 and
/// 10 000 for received packets waiting for the sender's key).
///
/// Unlike Rust, received packets are also released or failed when their query ends, so the
/// inbound queue cannot fill up with packets for a subnet nobody answers for (spec §4.5 bug?).
public struct PacketQueue<Packet>: Sendable where Packet: Sendable {
    public enum Outcome: Hashable, Sendable {
        case queued
        case subnetFull
        case full
    }

    public let perSubnetLimit: Int
    public let totalLimit: Int
    public private(set) var count = 0
    private var queues: [Subnet: [Packet]] = [:]

    public init(perSubnetLimit: Int, totalLimit: Int) {
        self.perSubnetLimit = perSubnetLimit
        self.totalLimit = totalLimit
    }

    /// Limits for packets read from the TUN.
    public static func outbound() -> PacketQueue { PacketQueue(perSubnetLimit: 10_000, totalLimit: 1_000_000) }
    /// Limits for received packets waiting for the sender's key.
    public static func inbound() -> PacketQueue { PacketQueue(perSubnetLimit: 100, totalLimit: 10_000) }

    public mutating func enqueue(_ packet: Packet, for subnet: Subnet) -> Outcome {
        guard count < totalLimit else { return .full }
        let queued = queues[subnet]?.count ?? 0
        guard queued < perSubnetLimit else { return .subnetFull }
        queues[subnet, default: []].append(packet)
        count += 1
        return .queued
    }

    /// Removes and returns the packets for `subnet`, oldest first (route acquired, or failed).
    public mutating func take(_ subnet: Subnet) -> [Packet] {
        guard let packets = queues.removeValue(forKey: subnet) else { return [] }
        count -= packets.count
        return packets
    }

    public func count(for subnet: Subnet) -> Int { queues[subnet]?.count ?? 0 }

    public var subnets: [Subnet] { queues.keys.sorted() }
}

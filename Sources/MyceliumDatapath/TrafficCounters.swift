public import MyceliumCore

/// Packets and bytes per overlay address, for `GET /api/v1/admin/stats/packets`.
///
/// Every data packet the node routes (its own, and those it forwards) is counted under its
/// source and under its destination address. Bounded: once `limit` addresses are known, packets
/// of further addresses are only counted in `overflow`, so a scan of the address space cannot
/// grow the node's memory.
public struct TrafficCounters: Sendable {
    public struct Count: Hashable, Sendable {
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0

        public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
            self.packets = packets
            self.bytes = bytes
        }
    }

    public static let limit = 4096

    public private(set) var bySource: [IPv6Address: Count] = [:]
    public private(set) var byDestination: [IPv6Address: Count] = [:]
    /// Packets not counted per address because the tables were full.
    public private(set) var overflow: UInt64 = 0

    public init() {}

    public mutating func count(source: IPv6Address, destination: IPv6Address, bytes: Int) {
        Self.add(&bySource, source, bytes, &overflow, &lastSource)
        Self.add(&byDestination, destination, bytes, &overflow, &lastDestination)
    }

    /// Each table's last address and where it is: a flow's packets come in runs, and a
    /// dictionary lookup (SipHash over the address) per packet and table was 3 % of a sending
    /// daemon's CPU. Indices stay valid while nothing is inserted (the tables never shrink).
    private struct Last: Sendable {
        let key: IPv6Address
        let index: [IPv6Address: Count].Index
    }

    private var lastSource: Last?
    private var lastDestination: Last?

    private static func add(_ table: inout [IPv6Address: Count], _ key: IPv6Address, _ bytes: Int, _ overflow: inout UInt64,
                            _ last: inout Last?) {
        if let l = last, l.key == key {
            table.values[l.index].packets += 1
            table.values[l.index].bytes += UInt64(bytes)
            return
        }
        if let i = table.index(forKey: key) {
            table.values[i].packets += 1
            table.values[i].bytes += UInt64(bytes)
            last = Last(key: key, index: i)
            return
        }
        guard table.count < limit else {
            overflow += 1
            return
        }
        table[key] = Count(packets: 1, bytes: UInt64(bytes))
        last = nil
    }
}

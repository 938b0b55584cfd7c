#if canImport(Glibc)
import Glibc
#endif
public import MyceliumCNI
public import MyceliumCore
public import MyceliumJSON
public import MyceliumSystem

/// Container addresses inside the node's /64, one per (container ID, CNI_IFNAME).
///
/// An address is derived from a hash of the key, so the same container interface gets the
/// same address again even if the state were lost, and two hosts never need to coordinate
/// (each owns its /64). On a collision the next free address is taken. Never handed out: the
/// subnet-router anycast address (`::`), `::1` and the node's own address.
public struct IPAM: Sendable {
    public let subnet: Subnet
    public let nodeAddress: IPv6Address
    public private(set) var records: [Attachment.Key: Attachment] = [:]

    public enum Failure: Error, Equatable {
        case exists(Attachment.Key)
    }

    public init(subnet: Subnet, nodeAddress: IPv6Address, records: [Attachment] = []) {
        self.subnet = subnet
        self.nodeAddress = nodeAddress
        for record in records { self.records[record.key] = record }
    }

    public var count: Int { records.count }

    /// Attachments the agent records at most (each is a veth pair; far beyond what one host
    /// runs, and it bounds the state file a local client could otherwise grow).
    public static let maxRecords = 65_536

    /// The address `key` gets (not yet recorded); nil if 1024 addresses in a row from its hash
    /// are taken (needs ~2^54 attachments, or a doctored state file).
    public func address(for key: Attachment.Key) -> IPv6Address? {
        let taken = Set(records.values.compactMap { Self.parse($0.address) })
        let hash = BLAKE3.hash(Array("\(key.containerID)\u{0}\(key.ifname)".utf8), length: 8)
        var low = hash.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let high = subnet.ipv6!.high
        for _ in 0..<1024 {
            let candidate = IPv6Address(high: high, low: low)
            if low > 1, candidate != nodeAddress, !taken.contains(candidate) { return candidate }
            low &+= 1
        }
        return nil
    }

    public mutating func record(_ attachment: Attachment) throws(Failure) {
        guard records[attachment.key] == nil else { throw .exists(attachment.key) }
        records[attachment.key] = attachment
    }

    @discardableResult
    public mutating func release(_ key: Attachment.Key) -> Attachment? {
        records.removeValue(forKey: key)
    }

    /// `addr/128` or `addr` → the address.
    public static func parse(_ text: String) -> IPv6Address? {
        IPv6Address(String(text.split(separator: "/").first ?? ""))
    }

    // MARK: persistence

    /// The state file's JSON: `{"version":1,"subnet":"…","attachments":[…]}`.
    public var json: JSON {
        .object([("version", .int(1)), ("subnet", .string("\(subnet)")),
                 ("attachments", .array(records.keys.sorted().map { records[$0]!.json }))])
    }

    /// Loads `path`; a missing file is an empty IPAM. Records of another /64 (the node key
    /// changed) are dropped with the count returned, since those addresses cannot be routed.
    public static func load(path: String, subnet: Subnet, nodeAddress: IPv6Address) throws(SystemError) -> (IPAM, dropped: Int) {
        guard TextFile.exists(path) else { return (IPAM(subnet: subnet, nodeAddress: nodeAddress), 0) }
        let text = try TextFile.read(path)
        guard let json = try? JSON(parsing: text), let items = json["attachments"]?.array else {
            throw SystemError("parse \(path)", errno: EINVAL)
        }
        let all = items.compactMap(Attachment.init(json:))
        let kept = all.filter { Self.parse($0.address).map(subnet.contains) ?? false }
        return (IPAM(subnet: subnet, nodeAddress: nodeAddress, records: kept), all.count - kept.count)
    }

    public func save(path: String) throws(SystemError) {
        try TextFile.writeAtomically(path, Array((json.pretty + "\n").utf8), mode: 0o600)
    }
}

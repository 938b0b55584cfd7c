/// LAN discovery beacon (spec §6), the whole UDP payload sent to `[ff02::cafe]:9650`.
/// ```
/// 0          8          10                50
/// +----------+----------+------------------+
/// | mycelium | tcp port | routerId (40 B)  |
/// +----------+----------+------------------+
/// ```
public struct DiscoveryBeacon: Hashable, Sendable {
    public static let length = 50
    public static let magic: [UInt8] = Array("mycelium".utf8)

    /// The sender's TCP listen port (not its QUIC port).
    public var tcpPort: UInt16
    public var routerId: RouterId

    public init(tcpPort: UInt16, routerId: RouterId) {
        self.tcpPort = tcpPort
        self.routerId = routerId
    }

    /// Accepts exactly 50 bytes starting with the magic.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        guard bytes.count == DiscoveryBeacon.length else {
            throw bytes.count < DiscoveryBeacon.length
                ? .truncated(needed: DiscoveryBeacon.length, available: bytes.count)
                : .oversized(length: bytes.count, limit: DiscoveryBeacon.length)
        }
        guard bytes.prefix(8).elementsEqual(DiscoveryBeacon.magic) else { throw .invalidField("beacon magic") }
        var reader = WireReader(bytes, start: 8, end: bytes.count)
        tcpPort = try reader.u16()
        routerId = try RouterId(reading: &reader)
    }

    public func encode() -> [UInt8] {
        var out = DiscoveryBeacon.magic
        out.reserveCapacity(DiscoveryBeacon.length)
        out.appendU16(tcpPort)
        routerId.append(to: &out)
        return out
    }
}

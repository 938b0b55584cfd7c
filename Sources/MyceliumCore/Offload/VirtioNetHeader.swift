/// `struct virtio_net_hdr`: the 10 bytes in front of every packet on a TUN opened with
/// IFF_VNET_HDR, describing the checksum and segmentation offloads the packet carries.
///
/// ```
/// 0       1          2         4          6            8             10
/// +-------+----------+---------+----------+------------+-------------+
/// | flags | gso_type | hdr_len | gso_size | csum_start | csum_offset |
/// +-------+----------+---------+----------+------------+-------------+
/// ```
/// The u16 fields are little-endian: legacy virtio uses host order, and every host we run on
/// (x86_64, arm64) is little-endian. Offsets count from the start of the IP packet.
public struct VirtioNetHeader: Hashable, Sendable {
    public static let length = 10

    /// `flags` bits.
    public enum Flag {
        /// The checksum from `checksumStart` to the end is still to be written at
        /// `checksumStart + checksumOffset` (CHECKSUM_PARTIAL).
        public static let needsChecksum: UInt8 = 1
        /// The checksum was already verified (CHECKSUM_UNNECESSARY).
        public static let dataValid: UInt8 = 2
    }

    /// `gsoType` values.
    public enum GSO {
        public static let none: UInt8 = 0
        public static let tcpv4: UInt8 = 1
        /// UFO: IPv4/IPv6 fragmentation of one UDP datagram.
        public static let udp: UInt8 = 3
        public static let tcpv6: UInt8 = 4
        /// USO: one UDP header per segment.
        public static let udpL4: UInt8 = 5
        /// Or-ed into a TCP type when the first segment carries CWR.
        public static let ecn: UInt8 = 0x80
    }

    public var flags: UInt8
    public var gsoType: UInt8
    /// `hdr_len`: bytes of headers (IP + transport) copied into every segment. Only a hint
    /// from the kernel: the splitter derives it from the TCP header itself.
    public var headerLength: UInt16
    /// `gso_size`: the payload bytes per segment (the last may be shorter).
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    /// No offload: a complete packet with its checksums written.
    public static let none = VirtioNetHeader()

    public init(flags: UInt8 = 0, gsoType: UInt8 = GSO.none, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// The header in the first 10 bytes of `bytes`; nil if fewer.
    public init?<C: Collection<UInt8>>(_ bytes: C) where C.Index == Int {
        guard bytes.count >= Self.length else { return nil }
        let o = bytes.startIndex
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[o + at]) | UInt16(bytes[o + at + 1]) << 8 }
        self.init(flags: bytes[o], gsoType: bytes[o + 1], headerLength: u16(2), gsoSize: u16(4),
                  checksumStart: u16(6), checksumOffset: u16(8))
    }

    /// The same from raw bytes (the TUN reader's path): not generic, so no per-byte access
    /// through a protocol witness.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.length else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        self.init(flags: bytes[0], gsoType: bytes[1], headerLength: u16(2), gsoSize: u16(4),
                  checksumStart: u16(6), checksumOffset: u16(8))
    }

    /// Writes the 10 bytes at the start of `buffer`. Precondition: `buffer.count >= 10`.
    public func write(to buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.length, "virtio_net_hdr needs 10 bytes")
        buffer[0] = flags
        buffer[1] = gsoType
        buffer.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        buffer.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        buffer.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        buffer.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    /// Calls `body` with the 10 encoded bytes, kept on the stack: no allocation per TUN write.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var storage: (UInt64, UInt16) = (0, 0)  // exactly 10 bytes in size
        Swift.withUnsafeMutableBytes(of: &storage) { write(to: $0) }
        return try Swift.withUnsafeBytes(of: &storage) { try body($0) }
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// How many packets the kernel makes of this header and a packet of `packetLength` bytes: 1
    /// without GSO, else the payload after `headerLength` cut in `gsoSize` pieces. Exact for the
    /// headers `TCPCoalescer` builds (the kernel's own `hdr_len` on read is only a hint).
    public func segmentCount(packetLength: Int) -> Int {
        let payload = packetLength - Int(headerLength), size = Int(gsoSize)
        guard gsoType != GSO.none, size > 0, payload > size else { return 1 }
        return (payload + size - 1) / size
    }
}

/// Why a packet read from the TUN with a virtio header could not be turned into packets.
public enum OffloadError: Error, Hashable, Sendable {
    /// Shorter than the headers or the checksum field it describes.
    case truncated
    /// Longer than `GSOSplit.maxPacketLength`.
    case tooLarge
    /// Not something the overlay carries: IPv4, UFO, an unknown GSO type, extension headers.
    case unsupported
    /// Inconsistent header fields, e.g. a zero `gso_size` or a TCP data offset below 5.
    case malformed
}

/// Segmentation of the super-packets the kernel hands a TUN with TSO/USO enabled (on read),
/// into the packets the overlay sends: what a NIC would do on transmit.
///
/// Only IPv6 without extension headers is split: the transport header must start at byte 40
/// (`csum_start == 40`). Each segment gets a full, valid transport checksum: the overlay
/// forwards packets to peers that have no use for partial ones.
public enum GSOSplit {
    /// 64 KiB: the kernel's GSO_LEGACY_MAX_SIZE, the largest super-packet a TUN hands us.
    /// It bounds the number of segments one call produces by the input size.
    public static let maxPacketLength = 65_536

    /// Appends the packets `packet` stands for to `segments`: itself (its checksum completed
    /// if the header asks for it) or its segments, in sequence order. Nothing is appended when
    /// it throws.
    public static func split(_ packet: [UInt8], header: VirtioNetHeader,
                             into segments: inout [[UInt8]]) throws(OffloadError) {
        if header.gsoType == VirtioNetHeader.GSO.none, header.flags & VirtioNetHeader.Flag.needsChecksum == 0 {
            guard packet.count <= maxPacketLength else { throw .tooLarge }
            segments.append(packet)  // shares the storage: no copy
            return
        }
        // withUnsafeBytes only rethrows untyped errors: the Result carries the typed one out.
        try packet.withUnsafeBytes { bytes in
            Result { () throws(OffloadError) in try split(bytes, header: header, into: &segments) }
        }.get()
    }

    /// As above, reading the packet from a buffer (e.g. the TUN read buffer, after the header).
    /// Segments are arrays from `pool` when one is given.
    public static func split(_ packet: UnsafeRawBufferPointer, header: VirtioNetHeader,
                             into segments: inout [[UInt8]], pool: PacketPool? = nil) throws(OffloadError) {
        guard packet.count <= maxPacketLength else { throw .tooLarge }
        switch header.gsoType & ~VirtioNetHeader.GSO.ecn {
        case VirtioNetHeader.GSO.none:
            segments.append(try completed(packet, header: header, pool: pool))
        case VirtioNetHeader.GSO.tcpv6:
            try splitTCP(packet, header: header, into: &segments, pool: pool)
        case VirtioNetHeader.GSO.udpL4:
            try splitUDP(packet, header: header, into: &segments, pool: pool)
        default:
            throw .unsupported
        }
    }

    /// A copy of a non-GSO packet, its CHECKSUM_PARTIAL checksum completed when flagged. The
    /// field already holds the pseudo-header sum, so summing from `csum_start` to the end
    /// includes it; 0 is sent as 0xFFFF, as the kernel's skb_checksum_help does.
    private static func completed(_ packet: UnsafeRawBufferPointer, header: VirtioNetHeader,
                                  pool: PacketPool?) throws(OffloadError) -> [UInt8] {
        guard header.flags & VirtioNetHeader.Flag.needsChecksum != 0 else { return EncryptedPayload.sealable(packet, pool: pool) }
        let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
        guard field + 2 <= packet.count else { throw .truncated }
        var out = EncryptedPayload.sealable(packet, pool: pool)
        out.withUnsafeMutableBytes { p in
            let sum = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: p[start...]))
            let check = ~InternetChecksum.fold(sum)
            p.storeBytes(of: (check == 0 ? 0xFFFF : check).bigEndian, toByteOffset: field, as: UInt16.self)
        }
        return out
    }

    /// The IPv6 header checks shared by TCP and UDP: version 6, transport at byte 40.
    private static func checkIPv6(_ packet: UnsafeRawBufferPointer, header: VirtioNetHeader,
                                  nextHeader: UInt8) throws(OffloadError) {
        guard packet.count >= IPv6Header.length else { throw .truncated }
        guard packet[0] >> 4 == 6, header.checksumStart == UInt16(IPv6Header.length),
              packet[IPv6Offsets.nextHeader] == nextHeader else { throw .unsupported }
        guard header.gsoSize > 0 else { throw .malformed }
    }

    private static func splitTCP(_ packet: UnsafeRawBufferPointer, header: VirtioNetHeader,
                                 into segments: inout [[UInt8]], pool: PacketPool?) throws(OffloadError) {
        try checkIPv6(packet, header: header, nextHeader: TCPLayout.protocolNumber)
        let t = IPv6Header.length
        guard packet.count > t + TCPLayout.dataOffset else { throw .truncated }
        // hdr_len is not trusted (the kernel may set it to the whole first packet on forwarding).
        let tcpLength = Int(packet[t + TCPLayout.dataOffset] >> 4) * 4
        guard tcpLength >= TCPLayout.minimumLength else { throw .malformed }
        let headers = t + tcpLength
        guard headers <= packet.count else { throw .truncated }
        let firstSeq = UInt32(bigEndian: packet.loadUnaligned(fromByteOffset: t + TCPLayout.sequence, as: UInt32.self))
        let flags = packet[t + TCPLayout.flags]
        emit(packet, headers: headers, gsoSize: Int(header.gsoSize), into: &segments, pool: pool) { segment, offset, isLast in
            segment.storeBytes(of: (firstSeq &+ UInt32(truncatingIfNeeded: offset)).bigEndian,
                               toByteOffset: t + TCPLayout.sequence, as: UInt32.self)
            // As the kernel's tcp_gso_segment: FIN and PSH end the stream of segments, CWR
            // marks only the first window reduction.
            var f = flags
            if !isLast { f &= ~(TCPLayout.fin | TCPLayout.psh) }
            if offset > 0 { f &= ~TCPLayout.cwr }
            segment[t + TCPLayout.flags] = f
            let check = ~InternetChecksum.fold(transportSum(segment, nextHeader: TCPLayout.protocolNumber,
                                                            checksumAt: t + TCPLayout.checksum))
            segment.storeBytes(of: check.bigEndian, toByteOffset: t + TCPLayout.checksum, as: UInt16.self)
        }
    }

    private static func splitUDP(_ packet: UnsafeRawBufferPointer, header: VirtioNetHeader,
                                 into segments: inout [[UInt8]], pool: PacketPool?) throws(OffloadError) {
        try checkIPv6(packet, header: header, nextHeader: UDPLayout.protocolNumber)
        let t = IPv6Header.length
        let headers = t + UDPLayout.length
        guard headers <= packet.count else { throw .truncated }
        emit(packet, headers: headers, gsoSize: Int(header.gsoSize), into: &segments, pool: pool) { segment, _, _ in
            segment.storeBytes(of: UInt16(truncatingIfNeeded: segment.count - t).bigEndian,
                               toByteOffset: t + UDPLayout.lengthOffset, as: UInt16.self)
            let check = ~InternetChecksum.fold(transportSum(segment, nextHeader: UDPLayout.protocolNumber,
                                                            checksumAt: t + UDPLayout.checksum))
            // In UDP a zero checksum means "none", which IPv6 forbids (RFC 8200 §8.1).
            segment.storeBytes(of: (check == 0 ? 0xFFFF : check).bigEndian,
                               toByteOffset: t + UDPLayout.checksum, as: UInt16.self)
        }
    }

    /// Appends one segment per `gsoSize` bytes of payload after `headers` (a single one if there
    /// is no payload): the headers, the IPv6 payload length set, that part of the payload; then
    /// `finish(segment, payloadOffset, isLast)` fixes up the transport header.
    private static func emit(_ packet: UnsafeRawBufferPointer, headers: Int, gsoSize: Int,
                             into segments: inout [[UInt8]], pool: PacketPool?,
                             finish: (UnsafeMutableRawBufferPointer, Int, Bool) -> Void) {
        let payload = packet.count - headers
        let needed = segments.count + max(1, (payload + gsoSize - 1) / gsoSize)
        if segments.capacity < needed {  // grown geometrically: a batch splits many packets into one array
            segments.reserveCapacity(max(needed, 2 * segments.capacity))
        }
        var offset = 0
        repeat {
            let size = min(gsoSize, payload - offset)
            let total = headers + size
            let part = UnsafeRawBufferPointer(rebasing: packet[(headers + offset)..<(headers + offset + size)])
            func fill(_ out: UnsafeMutableRawBufferPointer) {
                out.storeBytes(of: UInt16(truncatingIfNeeded: total - IPv6Header.length).bigEndian,
                               toByteOffset: IPv6Offsets.payloadLength, as: UInt16.self)
                finish(out, offset, offset + size == payload)
            }
            // With room to be sealed in place (`EncryptedPayload.sealRoom`).
            if let pool {
                var segment = pool.take(capacity: total + EncryptedPayload.sealRoom)
                segment.append(contentsOf: UnsafeRawBufferPointer(rebasing: packet[..<headers]))
                segment.append(contentsOf: part)
                segment.withUnsafeMutableBytes(fill)
                segments.append(segment)
            } else {
                segments.append([UInt8](unsafeUninitializedCapacity: total + EncryptedPayload.sealRoom) { buffer, count in
                    let out = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[..<total]))
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: packet[..<headers]))
                    UnsafeMutableRawBufferPointer(rebasing: out[headers...]).copyMemory(from: part)
                    fill(out)
                    count = total
                })
            }
            offset += size
        } while offset < payload
    }

    /// The unfolded pseudo-header + transport sum of an IPv6 packet, its checksum field zeroed first.
    private static func transportSum(_ packet: UnsafeMutableRawBufferPointer, nextHeader: UInt8, checksumAt: Int) -> UInt64 {
        packet.storeBytes(of: 0, toByteOffset: checksumAt, as: UInt16.self)
        let t = IPv6Header.length
        let pseudo = InternetChecksum.pseudoHeaderSum(
            addresses: UnsafeRawBufferPointer(rebasing: packet[IPv6Offsets.addresses..<t]),
            upperLayerLength: packet.count - t, nextHeader: nextHeader)
        return InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: packet[t...]), initial: pseudo)
    }
}

/// TCP header offsets and flags the offload code reads and edits.
enum TCPLayout {
    static let protocolNumber: UInt8 = 6
    static let minimumLength = 20
    static let sequence = 4
    static let acknowledgment = 8
    /// The data offset (high nibble) and reserved/AE bits.
    static let dataOffset = 12
    static let flags = 13
    static let window = 14
    static let checksum = 16
    static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04, psh: UInt8 = 0x08
    static let ack: UInt8 = 0x10, urg: UInt8 = 0x20, ece: UInt8 = 0x40, cwr: UInt8 = 0x80
}

enum UDPLayout {
    static let protocolNumber: UInt8 = 17
    static let length = 8
    static let lengthOffset = 4
    static let checksum = 6
}

/// Offsets in the fixed IPv6 header (`IPv6Header.length` bytes).
enum IPv6Offsets {
    static let payloadLength = 4
    static let nextHeader = 6
    static let hopLimit = 7
    /// Source then destination: the 32 bytes the pseudo-header starts with.
    static let addresses = 8
}

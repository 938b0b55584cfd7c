/// Receive offload for the packets the overlay writes to the TUN: consecutive in-order TCP
/// segments of one flow become one super-packet the kernel takes with a TCPV6 virtio header,
/// as a NIC's GRO would (one trip through the stack instead of one per segment).
///
/// Feed a batch with `add`, then `drain` it. A segment joins the open item of its flow only if
/// it continues it exactly: same IPv6 header fields (traffic class, flow label, hop limit,
/// addresses), no extension headers, same ports, TCP header length, options, ACK number and
/// window; flags ACK (or ACK|PSH, which closes the item); sequence number the item's next;
/// payload no longer than the first segment's (a shorter one closes the item); a valid
/// checksum; and the super-packet stays within `maxPacketLength`. Anything else goes out
/// alone and unchanged (the kernel judges it) after the flow's open item, which it closes:
/// within a flow, packets keep their order. Items leave in the order of their first packet.
public struct TCPCoalescer: Sendable {
    /// Flows with an item still open, per batch; packets of further flows go out alone.
    public static let maxFlows = 64
    /// The largest super-packet built, IPv6 header included.
    public static let maxPacketLength = 65_535

    private var items: [Item] = []
    /// Indices in `items` of the items a segment may still join, at most one per flow.
    private var open: [Int] = []
    /// Super-packet buffers (64 KiB) kept from earlier batches, so building one allocates
    /// nothing in steady state; at most `maxSpares`.
    private var spares: [[UInt8]] = []
    public static let maxSpares = 8
    /// Arrays the caller may reuse (`popFreed`): packets merged into others, first segments
    /// moved into a spare buffer, and everything drained that is not kept as a spare.
    private var freed: [[UInt8]] = []

    public init() {}

    /// Adds the next packet of the batch: a complete IPv6 packet, checksums written. Returns
    /// the packet's array when its bytes were merged into an earlier packet's (the caller may
    /// reuse it).
    @discardableResult
    public mutating func add(_ packet: consuming [UInt8]) -> [UInt8]? {
        guard let segment = packet.withUnsafeBytes(Segment.init) else {
            items.append(Item(alone: packet))
            return nil
        }
        if let slot = open.lastIndex(where: { items[$0].flow == segment.flow }) {
            let index = open[slot]
            open.swapAt(slot, open.count - 1)
            open.removeLast()  // closed unless the segment joins it
            if segment.mergeable, continues(index, with: segment, packet), verifyFirst(index) {
                guard packet.withUnsafeBytes(InternetChecksum.verifyIPv6) else {
                    items.append(Item(alone: packet))  // the kernel drops it; it must not spoil the item
                    return nil
                }
                if merge(packet, segment, into: index) { open.append(index) }
                return packet
            }
        }
        if segment.mergeable, segment.flags & TCPLayout.psh == 0, open.count < Self.maxFlows {
            items.append(Item(first: packet, segment))
            open.append(items.count - 1)
        } else {
            items.append(Item(alone: packet))
        }
        return nil
    }

    /// Hands over every item of the batch in order and empties the coalescer. A single packet
    /// comes with `VirtioNetHeader.none`, unchanged; a super-packet with a TCPV6 header, its
    /// payload length set and its checksum field holding the folded pseudo-header sum
    /// (CHECKSUM_PARTIAL: the kernel completes or segments it).
    /// After `body` a super-packet's buffer is kept for the next batches (up to `maxSpares`),
    /// every other array is left in `popFreed` for the caller to reuse.
    public mutating func drain(_ body: (VirtioNetHeader, [UInt8]) -> Void) {
        var batch: [Item] = []
        swap(&batch, &items)  // `batch` holds the only reference, so the fix-ups below do not copy
        open.removeAll(keepingCapacity: true)
        for i in batch.indices {
            let header = batch[i].segments > 1 ? batch[i].finish() : .none
            var packet: [UInt8] = []
            swap(&packet, &batch[i].packet)
            body(header, packet)
            if batch[i].segments > 1, packet.capacity >= Self.maxPacketLength, spares.count < Self.maxSpares {
                spares.append(packet)
            } else {
                freed.append(packet)
            }
        }
        batch.removeAll(keepingCapacity: true)
        items = batch
    }

    /// An array the caller may reuse (see `freed`), until none is left.
    public mutating func popFreed() -> [UInt8]? { freed.popLast() }

    /// Whether `segment` continues the item at `index` exactly (checksum aside).
    private func continues(_ index: Int, with segment: Segment, _ packet: [UInt8]) -> Bool {
        guard segment.sequence == items[index].nextSequence, segment.payloadLength <= items[index].gsoSize,
              segment.tcpLength == items[index].tcpLength,
              items[index].packet.count + segment.payloadLength <= Self.maxPacketLength else { return false }
        return items[index].packet.withUnsafeBytes { a in
            packet.withUnsafeBytes { b in Self.sameHeaders(a, b, tcpLength: segment.tcpLength) }
        }
    }

    /// The header fields that must match between segments of one super-packet; flow, flags and
    /// sequence are checked elsewhere. Both packets hold at least `40 + tcpLength` bytes.
    private static func sameHeaders(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, tcpLength: Int) -> Bool {
        func u32(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32 { p.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
        let t = IPv6Header.length
        guard u32(a, 0) == u32(b, 0),  // version, traffic class, flow label
              a[IPv6Offsets.hopLimit] == b[IPv6Offsets.hopLimit],
              u32(a, t + TCPLayout.acknowledgment) == u32(b, t + TCPLayout.acknowledgment),
              a[t + TCPLayout.dataOffset] == b[t + TCPLayout.dataOffset],  // also the reserved and AE bits
              a.loadUnaligned(fromByteOffset: t + TCPLayout.window, as: UInt16.self)
                == b.loadUnaligned(fromByteOffset: t + TCPLayout.window, as: UInt16.self)
        else { return false }
        var at = t + TCPLayout.minimumLength
        while at < t + tcpLength {  // options: the data offset counts 32-bit words
            guard u32(a, at) == u32(b, at) else { return false }
            at += 4
        }
        return true
    }

    /// The first segment's checksum is checked only once a second one wants to join it: an item
    /// of one goes out untouched anyway. A bad one closes the item.
    private mutating func verifyFirst(_ index: Int) -> Bool {
        if !items[index].verified {
            items[index].verified = items[index].packet.withUnsafeBytes(InternetChecksum.verifyIPv6)
        }
        return items[index].verified
    }

    /// Appends the segment's payload; true if the item stays open.
    private mutating func merge(_ packet: [UInt8], _ segment: Segment, into index: Int) -> Bool {
        let tcpFlags = IPv6Header.length + TCPLayout.flags
        if items[index].segments == 1 {
            // The item becomes a super-packet: into a spare 64 KiB buffer when there is one.
            if var big = spares.popLast() {
                big.removeAll(keepingCapacity: true)
                big.append(contentsOf: items[index].packet)
                swap(&big, &items[index].packet)
                freed.append(big)  // the first segment's own array
            } else {
                items[index].packet.reserveCapacity(Self.maxPacketLength)
            }
        }
        items[index].packet.append(contentsOf: packet[(packet.count - segment.payloadLength)...])
        items[index].segments += 1
        items[index].nextSequence &+= UInt32(truncatingIfNeeded: segment.payloadLength)
        if segment.flags & TCPLayout.psh != 0 {
            items[index].packet[tcpFlags] |= TCPLayout.psh  // splitting puts it back on the last segment only
            return false
        }
        return segment.payloadLength == items[index].gsoSize
    }
}

extension TCPCoalescer {
    /// Addresses and ports, as loaded from memory: compared, never interpreted.
    private struct Flow: Equatable, Sendable {
        var source0: UInt64, source1: UInt64, destination0: UInt64, destination1: UInt64
        var ports: UInt32

        init(_ p: UnsafeRawBufferPointer) {
            let a = IPv6Offsets.addresses
            source0 = p.loadUnaligned(fromByteOffset: a, as: UInt64.self)
            source1 = p.loadUnaligned(fromByteOffset: a + 8, as: UInt64.self)
            destination0 = p.loadUnaligned(fromByteOffset: a + 16, as: UInt64.self)
            destination1 = p.loadUnaligned(fromByteOffset: a + 24, as: UInt64.self)
            ports = p.loadUnaligned(fromByteOffset: IPv6Header.length, as: UInt32.self)
        }
    }

    /// A TCP segment directly in an IPv6 packet, as far as coalescing needs it.
    private struct Segment {
        var flow: Flow
        var tcpLength: Int
        var payloadLength: Int
        var sequence: UInt32
        var flags: UInt8
        /// ACK or ACK|PSH with a payload, its length field matching, within the size bound.
        var mergeable: Bool

        /// Nil unless IPv6 with a TCP header (at least its fixed part) at byte 40.
        init?(_ p: UnsafeRawBufferPointer) {
            let t = IPv6Header.length
            guard p.count >= t + TCPLayout.minimumLength, p[0] >> 4 == 6,
                  p[IPv6Offsets.nextHeader] == TCPLayout.protocolNumber else { return nil }
            flow = Flow(p)
            tcpLength = Int(p[t + TCPLayout.dataOffset] >> 4) * 4
            payloadLength = p.count - t - tcpLength
            sequence = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: t + TCPLayout.sequence, as: UInt32.self))
            flags = p[t + TCPLayout.flags]
            let lengthField = Int(p[IPv6Offsets.payloadLength]) << 8 | Int(p[IPv6Offsets.payloadLength + 1])
            mergeable = tcpLength >= TCPLayout.minimumLength && payloadLength > 0 && lengthField == p.count - t
                && p.count <= TCPCoalescer.maxPacketLength && flags & ~TCPLayout.psh == TCPLayout.ack
        }
    }

    private struct Item: Sendable {
        var packet: [UInt8]
        var segments = 1
        /// Whether the first segment's checksum was verified (set only when a second one comes).
        var verified = false
        // What later segments must match; unused for a packet that goes out alone.
        var flow: Flow?
        var nextSequence: UInt32 = 0
        var gsoSize = 0
        var tcpLength = 0

        init(alone packet: [UInt8]) { self.packet = packet }

        init(first packet: [UInt8], _ segment: Segment) {
            self.packet = packet
            flow = segment.flow
            nextSequence = segment.sequence &+ UInt32(truncatingIfNeeded: segment.payloadLength)
            gsoSize = segment.payloadLength
            tcpLength = segment.tcpLength
        }

        /// Turns a merged item into its super-packet and returns the header that goes with it.
        mutating func finish() -> VirtioNetHeader {
            let t = IPv6Header.length, upperLength = packet.count - t
            packet.withUnsafeMutableBytes { p in
                p.storeBytes(of: UInt16(truncatingIfNeeded: upperLength).bigEndian,
                             toByteOffset: IPv6Offsets.payloadLength, as: UInt16.self)
                let pseudo = InternetChecksum.pseudoHeaderSum(
                    addresses: UnsafeRawBufferPointer(rebasing: p[IPv6Offsets.addresses..<t]),
                    upperLayerLength: upperLength, nextHeader: TCPLayout.protocolNumber)
                p.storeBytes(of: InternetChecksum.fold(pseudo).bigEndian, toByteOffset: t + TCPLayout.checksum, as: UInt16.self)
            }
            return VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv6,
                                   headerLength: UInt16(t + tcpLength), gsoSize: UInt16(gsoSize),
                                   checksumStart: UInt16(t), checksumOffset: UInt16(TCPLayout.checksum))
        }
    }
}

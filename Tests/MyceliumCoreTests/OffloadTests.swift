import MyceliumCore
import MyceliumTesting
import Testing

// Reference implementations and packet builders, independent of the code under test.

/// RFC 1071, one big-endian word at a time, folded as it goes.
private func naiveSum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var sum: UInt32 = 0
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let low = i + 1 < bytes.endIndex ? UInt32(bytes[i + 1]) : 0
        sum += UInt32(bytes[i]) << 8 | low
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        i += 2
    }
    return sum
}

private func naiveFold(_ sum: UInt32) -> UInt16 {
    var s = sum
    while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
    return UInt16(s)
}

/// The pseudo-header sum of an IPv6 packet without extension headers.
private func naivePseudoSum(_ p: [UInt8]) -> UInt32 {
    let n = p.count - 40
    let pseudo = Array(p[8..<40]) + [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), 0, 0, 0, p[6]]
    return naiveSum(pseudo[...])
}

/// The transport checksum of an IPv6 packet, the field at `at` taken as zero.
private func naiveChecksum(_ p: [UInt8], at: Int) -> UInt16 {
    var q = p
    q[at] = 0
    q[at + 1] = 0
    return ~naiveFold(naivePseudoSum(q) + naiveSum(q[40...]))
}

private func u16(_ p: [UInt8], _ at: Int) -> UInt16 { UInt16(p[at]) << 8 | UInt16(p[at + 1]) }
private func u32(_ p: [UInt8], _ at: Int) -> UInt32 { UInt32(u16(p, at)) << 16 | UInt32(u16(p, at + 2)) }
private func put16(_ p: inout [UInt8], _ at: Int, _ v: UInt16) { p[at] = UInt8(v >> 8); p[at + 1] = UInt8(v & 0xFF) }
private func put32(_ p: inout [UInt8], _ at: Int, _ v: UInt32) { put16(&p, at, UInt16(v >> 16)); put16(&p, at + 2, UInt16(v & 0xFFFF)) }
private func verifies(_ p: [UInt8]) -> Bool { p.withUnsafeBytes { InternetChecksum.verifyIPv6($0) } }

private let ack: UInt8 = 0x10, psh: UInt8 = 0x08, fin: UInt8 = 0x01, syn: UInt8 = 0x02, cwr: UInt8 = 0x80

/// A TCP/IPv6 packet's fields; `packet` builds it with a valid checksum.
private struct TCPSpec {
    var source: [UInt8] = [0x05, 0x20, 0xC6, 0x62, 0xFD, 0, 0x9E, 0x92, 0, 0, 0, 0, 0, 0, 0, 1]
    var destination: [UInt8] = [0x05, 0x2D, 0x0D, 0xC0, 0xAB, 0x0C, 0x85, 0x1A, 0, 0, 0, 0, 0, 0, 0, 2]
    var sourcePort: UInt16 = 40000
    var destinationPort: UInt16 = 443
    var sequence: UInt32 = 0xFFFF_F000  // wraps within a few segments
    var acknowledgment: UInt32 = 0x1234_5678
    var flags: UInt8 = ack
    var window: UInt16 = 512
    /// NOP NOP timestamps: a 32-byte TCP header.
    var options: [UInt8] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
    var trafficClass: UInt8 = 0
    var hopLimit: UInt8 = 64

    var headersLength: Int { 40 + 20 + options.count }

    func packet(_ payload: ArraySlice<UInt8>) -> [UInt8] {
        let tcpLength = 20 + options.count
        var p: [UInt8] = [0x60 | trafficClass >> 4, trafficClass << 4 | 0x0A, 0xBC, 0xDE, 0, 0, 6, hopLimit]
        p += source + destination
        put16(&p, 4, UInt16(tcpLength + payload.count))
        var tcp = [UInt8](repeating: 0, count: 20)
        put16(&tcp, 0, sourcePort)
        put16(&tcp, 2, destinationPort)
        put32(&tcp, 4, sequence)
        put32(&tcp, 8, acknowledgment)
        tcp[12] = UInt8(tcpLength / 4) << 4
        tcp[13] = flags
        put16(&tcp, 14, window)
        p += tcp + options + payload
        put16(&p, 56, naiveChecksum(p, at: 56))
        return p
    }

    /// What the kernel hands over with TSO: one packet for all of `payload`, its checksum field
    /// holding the folded pseudo-header sum (CHECKSUM_PARTIAL).
    func superPacket(_ payload: [UInt8]) -> [UInt8] {
        var p = packet(payload[...])
        put16(&p, 56, naiveFold(naivePseudoSum(p)))
        return p
    }

    /// The segments a sender makes of `payload`: PSH and FIN on the last one only.
    func segments(_ payload: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: payload.count, by: size).map { offset in
            var s = self
            s.sequence = sequence &+ UInt32(offset)
            if offset + size < payload.count { s.flags &= ~(psh | fin) }
            return s.packet(payload[offset..<min(payload.count, offset + size)])
        }
    }

    /// The same flow, `bytes` further on.
    func advanced(by bytes: Int) -> TCPSpec {
        var s = self
        s.sequence &+= UInt32(bytes)
        return s
    }
}

private func tsoHeader(gsoSize: UInt16, tcpLength: Int = 32) -> VirtioNetHeader {
    VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv6,
                    headerLength: UInt16(40 + tcpLength), gsoSize: gsoSize, checksumStart: 40, checksumOffset: 16)
}

private func coalesce(_ packets: [[UInt8]]) -> [(header: VirtioNetHeader, packet: [UInt8])] {
    var coalescer = TCPCoalescer()
    for p in packets { coalescer.add(p) }
    var out: [(header: VirtioNetHeader, packet: [UInt8])] = []
    coalescer.drain { out.append(($0, $1)) }
    return out
}

/// Segments per drained item (1 for a packet sent alone).
private func itemSizes(_ packets: [[UInt8]]) -> [Int] {
    coalesce(packets).map { $0.header.segmentCount(packetLength: $0.packet.count) }
}

@Suite struct VirtioNetHeaderTests {
    @Test("10 bytes, little-endian u16 fields; decodes from arrays, slices and raw buffers")
    func layout() throws {
        let h = VirtioNetHeader(flags: 1, gsoType: 0x84, headerLength: 0x0102, gsoSize: 0x0304,
                                checksumStart: 0x0506, checksumOffset: 0x0708)
        #expect(h.bytes == [1, 0x84, 2, 1, 4, 3, 6, 5, 8, 7])
        #expect(VirtioNetHeader(h.bytes) == h)
        #expect(VirtioNetHeader(h.bytes + [9, 9]) == h)
        #expect(VirtioNetHeader(([0xAA] + h.bytes)[1...]) == h)
        #expect(VirtioNetHeader(Array(h.bytes.prefix(9))) == nil)
        #expect(h.bytes.withUnsafeBytes { VirtioNetHeader($0) } == h)
        #expect(h.bytes.prefix(9).withUnsafeBytes { VirtioNetHeader($0) } == nil)
        #expect(VirtioNetHeader.none.bytes == [UInt8](repeating: 0, count: 10))
        var raw = [UInt8](repeating: 0xEE, count: 12)
        raw.withUnsafeMutableBytes { h.write(to: $0) }
        #expect(raw == h.bytes + [0xEE, 0xEE])
        #expect(raw.withUnsafeBytes { VirtioNetHeader($0) } == h)
        #expect(h.withUnsafeBytes { Array($0) } == h.bytes)
    }

    @Test("segment count: 1 without GSO, else the payload in gso_size pieces")
    func segmentCount() {
        #expect(VirtioNetHeader.none.segmentCount(packetLength: 1500) == 1)
        #expect(tsoHeader(gsoSize: 1348).segmentCount(packetLength: 72 + 10_000) == 8)
        #expect(tsoHeader(gsoSize: 1000).segmentCount(packetLength: 72 + 3000) == 3)
        #expect(tsoHeader(gsoSize: 1000).segmentCount(packetLength: 72 + 999) == 1)
        #expect(tsoHeader(gsoSize: 0).segmentCount(packetLength: 72 + 999) == 1)
    }
}

@Suite struct InternetChecksumTests {
    @Test("sum and fold match the reference for any length, start offset and initial sum")
    func reference() {
        var rng = SeededRandom(seed: 0x0FF1_0AD)
        for _ in 0..<2000 {
            let count = Int.random(in: 0...300, using: &rng)
            let start = Int.random(in: 0...15, using: &rng)
            let slice = rng.bytes(count + 16)[start..<(start + count)]
            let initial = UInt64.random(in: 0...UInt64.max, using: &rng)
            let sum = slice.withUnsafeBytes { InternetChecksum.sum($0) }
            #expect(InternetChecksum.fold(sum) == naiveFold(naiveSum(slice)))
            // With an initial sum, compare modulo 0xFFFF (0 and 0xFFFF are both ones'-complement zero).
            let chained = slice.withUnsafeBytes { InternetChecksum.sum($0, initial: initial) }
            #expect(UInt64(InternetChecksum.fold(chained)) % 0xFFFF == (UInt64(naiveSum(slice)) + initial % 0xFFFF) % 0xFFFF)
        }
        let big = rng.bytes(65_543) + [UInt8](repeating: 0xFF, count: 70_001)
        #expect(InternetChecksum.fold(big.withUnsafeBytes { InternetChecksum.sum($0) }) == naiveFold(naiveSum(big[...])))
        #expect(InternetChecksum.fold(.max) == 0xFFFF)
        #expect(InternetChecksum.fold(0) == 0)
    }

    @Test("pseudo-header + sum reproduce the ICMPv6 checksum of the data-packet vector")
    func vector() throws {
        let echo = try #require(Vectors.vector("data.encrypted_l3_packet")["ipv6_packet_hex"].hexBytes)
        #expect(u16(echo, 42) == 0x65D1)
        #expect(verifies(echo))
        var zeroed = echo
        put16(&zeroed, 42, 0)
        let sum = zeroed.withUnsafeBytes { p in
            let pseudo = InternetChecksum.pseudoHeaderSum(addresses: UnsafeRawBufferPointer(rebasing: p[8..<40]),
                                                          upperLayerLength: p.count - 40, nextHeader: 58)
            return InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: p[40...]), initial: pseudo)
        }
        #expect(~InternetChecksum.fold(sum) == 0x65D1)
        #expect(!verifies(zeroed))
        var wrongLength = echo
        wrongLength[5] += 1
        #expect(!verifies(wrongLength), "the payload length field must match the packet")
    }
}

@Suite struct GSOSplitTests {
    @Test("a TCPv6 super-packet: segments ≤ gso_size, sequence numbers, PSH/FIN last, CWR first, valid checksums")
    func tcp() throws {
        var rng = SeededRandom(seed: 1)
        var spec = TCPSpec()
        spec.flags = ack | psh | fin | cwr
        let payload = rng.bytes(10_000)
        let superPacket = spec.superPacket(payload)
        var out: [[UInt8]] = []
        try GSOSplit.split(superPacket, header: tsoHeader(gsoSize: 1348), into: &out)
        try #require(out.count == 8)
        var joined: [UInt8] = []
        for (i, s) in out.enumerated() {
            let isLast = i == out.count - 1
            #expect(s.count - 72 == (isLast ? 10_000 - 7 * 1348 : 1348))
            #expect(Int(u16(s, 4)) == s.count - 40)
            #expect(u32(s, 44) == spec.sequence &+ UInt32(i * 1348))
            #expect(s[53] & ack != 0)
            #expect((s[53] & psh != 0) == isLast && (s[53] & fin != 0) == isLast)
            #expect((s[53] & cwr != 0) == (i == 0))
            #expect(u16(s, 56) == naiveChecksum(s, at: 56))
            #expect(verifies(s))
            // Everything else in the headers is copied.
            #expect(Array(s[..<4]) == Array(superPacket[..<4]) && Array(s[6..<44]) == Array(superPacket[6..<44]))
            #expect(Array(s[48..<53]) == Array(superPacket[48..<53]) && Array(s[54..<56]) == Array(superPacket[54..<56]))
            #expect(Array(s[58..<72]) == Array(superPacket[58..<72]))
            joined += s[72...]
        }
        #expect(joined == payload)

        // hdr_len is only a hint, the ECN bit changes nothing here, and results are appended.
        var hint = tsoHeader(gsoSize: 1348)
        hint.headerLength = 1400
        hint.gsoType |= VirtioNetHeader.GSO.ecn
        try GSOSplit.split(superPacket, header: hint, into: &out)
        #expect(out.count == 16 && Array(out[8...]) == Array(out[..<8]))
    }

    @Test("the segments are exactly what the sender would have sent without TSO")
    func matchesReference() throws {
        var rng = SeededRandom(seed: 2)
        var spec = TCPSpec()
        spec.flags = ack | psh
        for (size, gso) in [(5000, 1000), (2000, 1000), (100, 1348), (1, 1)] {
            let payload = rng.bytes(size)
            var out: [[UInt8]] = []
            try GSOSplit.split(spec.superPacket(payload), header: tsoHeader(gsoSize: UInt16(gso)), into: &out)
            #expect(out == spec.segments(payload, size: gso))
            // Into pool buffers: the same segments, each with room to be sealed in place.
            let pool = PacketPool()
            var pooled: [[UInt8]] = []
            try spec.superPacket(payload).withUnsafeBytes {
                try GSOSplit.split($0, header: tsoHeader(gsoSize: UInt16(gso)), into: &pooled, pool: pool)
            }
            #expect(pooled == out)
            #expect(pooled.allSatisfy { $0.capacity >= $0.count + EncryptedPayload.sealRoom })
        }
    }

    @Test("USO: one UDP header per segment, its length and full checksum set")
    func udp() throws {
        var rng = SeededRandom(seed: 3)
        let payload = rng.bytes(3000)
        var p: [UInt8] = [0x60, 0, 0, 0, 0, 0, 17, 64] + TCPSpec().source + TCPSpec().destination
        p += [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0] + payload
        put16(&p, 4, UInt16(p.count - 40))
        put16(&p, 44, UInt16(p.count - 40))
        put16(&p, 46, naiveFold(naivePseudoSum(p)))
        let header = VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, gsoType: VirtioNetHeader.GSO.udpL4,
                                     headerLength: 48, gsoSize: 1200, checksumStart: 40, checksumOffset: 6)
        var out: [[UInt8]] = []
        try GSOSplit.split(p, header: header, into: &out)
        #expect(out.map(\.count) == [1248, 1248, 648])
        var pooled: [[UInt8]] = []
        try p.withUnsafeBytes { try GSOSplit.split($0, header: header, into: &pooled, pool: PacketPool()) }
        #expect(pooled == out)
        var joined: [UInt8] = []
        for s in out {
            #expect(Int(u16(s, 4)) == s.count - 40 && Int(u16(s, 44)) == s.count - 40)
            #expect(Array(s[40..<44]) == [0x12, 0x34, 0x56, 0x78])
            #expect(u16(s, 46) != 0 && verifies(s))
            joined += s[48...]
        }
        #expect(joined == payload)
    }

    @Test("without GSO: NEEDS_CSUM completes the partial checksum, otherwise the packet is untouched")
    func checksumCompletion() throws {
        var rng = SeededRandom(seed: 4)
        let full = TCPSpec().packet(rng.bytes(777)[...])
        var partial = full
        put16(&partial, 56, naiveFold(naivePseudoSum(partial)))
        var out: [[UInt8]] = []
        let needsChecksum = VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, checksumStart: 40, checksumOffset: 16)
        try GSOSplit.split(partial, header: needsChecksum, into: &out)
        try partial.withUnsafeBytes { p in
            try GSOSplit.split(p, header: needsChecksum, into: &out)  // the raw-buffer entry point
        }
        try GSOSplit.split(partial, header: .none, into: &out)
        try GSOSplit.split(partial, header: VirtioNetHeader(flags: VirtioNetHeader.Flag.dataValid), into: &out)
        try partial.withUnsafeBytes { p in
            try GSOSplit.split(p, header: needsChecksum, into: &out, pool: PacketPool())
        }
        #expect(out == [full, full, partial, partial, full])
        #expect(throws: OffloadError.truncated) {
            var o: [[UInt8]] = []
            let field = VirtioNetHeader(flags: 1, checksumStart: 40, checksumOffset: UInt16(partial.count - 41))
            try GSOSplit.split(partial, header: field, into: &o)
        }
    }

    @Test("errors: truncated, IPv4, UFO, unknown type, gso_size 0, bad data offset, extension header, over 64 KiB")
    func errors() throws {
        var rng = SeededRandom(seed: 5)
        let spec = TCPSpec()
        let sp = spec.superPacket(rng.bytes(3000))
        let tso = tsoHeader(gsoSize: 1000)
        func split(_ p: [UInt8], _ h: VirtioNetHeader) throws {
            var out: [[UInt8]] = []
            defer { #expect(out.isEmpty, "nothing is appended on error") }
            try GSOSplit.split(p, header: h, into: &out)
        }
        for n in [0, 39, 53, 71] {
            #expect(throws: OffloadError.truncated) { try split(Array(sp.prefix(n)), tso) }
        }
        #expect(throws: OffloadError.malformed) { try split(sp, tsoHeader(gsoSize: 0)) }
        var badOffset = sp
        badOffset[52] = 0x40
        #expect(throws: OffloadError.malformed) { try split(badOffset, tso) }
        var ipv4 = sp
        ipv4[0] = 0x45
        #expect(throws: OffloadError.unsupported) { try split(ipv4, tso) }
        for type in [VirtioNetHeader.GSO.tcpv4, VirtioNetHeader.GSO.udp, 9] {
            var h = tso
            h.gsoType = type
            #expect(throws: OffloadError.unsupported) { try split(sp, h) }
        }
        var hopByHop = sp
        hopByHop[6] = 0
        #expect(throws: OffloadError.unsupported) { try split(hopByHop, tso) }
        var start = tso
        start.checksumStart = 48
        #expect(throws: OffloadError.unsupported) { try split(sp, start) }
        let uso = VirtioNetHeader(flags: 1, gsoType: VirtioNetHeader.GSO.udpL4, headerLength: 48, gsoSize: 1200,
                                  checksumStart: 40, checksumOffset: 6)
        #expect(throws: OffloadError.unsupported) { try split(sp, uso) }  // a TCP packet
        #expect(throws: OffloadError.tooLarge) { try split(spec.superPacket(rng.bytes(65_536 - 71)), tso) }
        #expect(throws: OffloadError.tooLarge) { try split([UInt8](repeating: 0x60, count: 65_537), .none) }
    }

    @Test("random headers on cut and corrupted packets never trap, in the splitter or the coalescer")
    func robustness() {
        var rng = SeededRandom(seed: 6)
        let sp = TCPSpec().superPacket(rng.bytes(3000))
        for _ in 0..<5000 {
            let r = rng.bytes(10)
            let type = [0, 1, 3, 4, 5, 0x84, r[1]][Int(r[1] % 7)]
            let header = VirtioNetHeader(flags: r[0] & 3, gsoType: type, headerLength: UInt16(r[2]),
                                         gsoSize: UInt16(r[4]) % 4 * 500, checksumStart: r[6] < 200 ? 40 : UInt16(r[7]),
                                         checksumOffset: UInt16(r[8]))
            var p = Array(sp.prefix(Int.random(in: 0...sp.count, using: &rng)))
            if !p.isEmpty { p[Int.random(in: 0..<p.count, using: &rng)] = r[9] }
            var out: [[UInt8]] = []
            _ = try? GSOSplit.split(p, header: header, into: &out)
            var coalescer = TCPCoalescer()
            coalescer.add(p)
            coalescer.add(p)
            coalescer.drain { _, _ in }
        }
    }
}

@Suite struct TCPCoalescerTests {
    static let payload: [UInt8] = {
        var rng = SeededRandom(seed: 7)
        return rng.bytes(4000)
    }()
    static let segments = TCPSpec().segments(payload, size: 1000)

    @Test("split then coalesce gives back the kernel's super-packet byte for byte, with an equivalent header")
    func roundTrip() throws {
        var rng = SeededRandom(seed: 8)
        var spec = TCPSpec()
        spec.flags = ack | psh
        for (size, gso) in [(10_000, 1348), (5000, 1000), (1349, 1348), (2, 1)] {
            // The checksum field of both holds the folded pseudo-header sum (CHECKSUM_PARTIAL).
            let superPacket = spec.superPacket(rng.bytes(size))
            var segments: [[UInt8]] = []
            try GSOSplit.split(superPacket, header: tsoHeader(gsoSize: UInt16(gso)), into: &segments)
            let items = coalesce(segments)
            try #require(items.count == 1)
            #expect(items[0].packet == superPacket)
            #expect(items[0].header == tsoHeader(gsoSize: UInt16(gso)))
            #expect(items[0].header.segmentCount(packetLength: superPacket.count) == segments.count)
            // Every segment after the first is merged, and its array handed back for reuse.
            var coalescer = TCPCoalescer()
            let handedBack = segments.map { coalescer.add($0) }
            #expect(handedBack.first! == nil)
            #expect(Array(handedBack.dropFirst()) == segments.dropFirst().map { Optional($0) })
        }
    }

    @Test("the merged packet's partial checksum completes to a valid one")
    func partialChecksum() throws {
        let item = try #require(coalesce(Self.segments).first)
        #expect(item.header.gsoType == VirtioNetHeader.GSO.tcpv6 && item.header.gsoSize == 1000)
        #expect(u16(item.packet, 56) == naiveFold(naivePseudoSum(item.packet)))
        var completed: [[UInt8]] = []
        var noGSO = item.header
        noGSO.gsoType = VirtioNetHeader.GSO.none
        try GSOSplit.split(item.packet, header: noGSO, into: &completed)
        #expect(completed.count == 1 && verifies(completed[0]))
    }

    @Test("never more than 64 KiB: a longer run becomes several super-packets that split back to the segments")
    func sizeBound() throws {
        var rng = SeededRandom(seed: 9)
        var spec = TCPSpec()
        spec.flags = ack | psh
        let segments = spec.segments(rng.bytes(60 * 1348), size: 1348)
        let items = coalesce(segments)
        #expect(items.count == 2)
        #expect(items.allSatisfy { $0.packet.count <= TCPCoalescer.maxPacketLength })
        var again: [[UInt8]] = []
        for item in items { try GSOSplit.split(item.packet, header: item.header, into: &again) }
        #expect(again == segments)
    }

    @Test("flows are kept apart, each item in the order of its first packet")
    func flows() {
        var other = TCPSpec()
        other.sourcePort = 40001
        let b = other.segments(Self.payload, size: 1000)
        let items = coalesce(zip(Self.segments, b).flatMap { [$0, $1] })
        #expect(items.count == 2)
        #expect(items.map { u16($0.packet, 40) } == [40000, 40001])
        #expect(items.allSatisfy { $0.packet.count == 72 + 4000 })
    }

    @Test("out of order, another ACK number, options, hop limit or traffic class: not merged, order kept")
    func mismatches() {
        let s = Self.segments, spec = TCPSpec(), payload = Self.payload
        #expect(itemSizes([s[0], s[2], s[1], s[3]]) == [1, 1, 1, 1])
        let reordered = coalesce([s[0], s[1], s[3], s[2]])
        #expect(reordered.map(\.header.gsoType) == [VirtioNetHeader.GSO.tcpv6, 0, 0])
        #expect(reordered.map(\.packet).suffix(2) == [s[3], s[2]])
        var otherAck = spec.advanced(by: 1000)
        otherAck.acknowledgment &+= 1
        var options = spec.advanced(by: 1000)
        options.options[11] = 9
        var hop = spec.advanced(by: 1000)
        hop.hopLimit = 63
        var trafficClass = spec.advanced(by: 1000)
        trafficClass.trafficClass = 4
        for second in [otherAck, options, hop, trafficClass] {
            #expect(itemSizes([s[0], second.packet(payload[1000..<2000])]) == [1, 1])
        }
        // A longer segment cannot follow a shorter one.
        #expect(itemSizes([spec.packet(payload[0..<500]), spec.advanced(by: 500).packet(payload[500..<1500])]) == [1, 1])
    }

    @Test("SYN, a bad checksum, a pure ACK go out alone, untouched, after the flow's item")
    func alone() {
        let s = Self.segments, spec = TCPSpec(), payload = Self.payload
        var synSpec = spec.advanced(by: 2000)
        synSpec.flags = ack | syn
        let syn = synSpec.packet(payload[2000..<3000])
        let withSyn = coalesce([s[0], s[1], syn, s[3]])
        #expect(withSyn.map(\.packet.count) == [72 + 2000, syn.count, s[3].count])
        #expect(withSyn[1].packet == syn && withSyn[1].header == .none)

        var bad = s[1]
        bad[100] ^= 1
        let withBad = coalesce([s[0], bad, s[2]])
        #expect(withBad.map(\.packet) == [s[0], bad, s[2]] && withBad.allSatisfy { $0.header == .none })
        var badFirst = s[0]
        badFirst[100] ^= 1
        let withBadFirst = coalesce(s.enumerated().map { $0.offset == 0 ? badFirst : $0.element })
        #expect(withBadFirst.map(\.packet.count) == [badFirst.count, 72 + 3000])
        #expect(withBadFirst[0].packet == badFirst && withBadFirst[0].header == .none)

        let pureAck = spec.advanced(by: 1000).packet([UInt8]()[...])
        #expect(itemSizes([s[0], pureAck, s[1]]) == [1, 1, 1])
    }

    @Test("PSH or a short segment ends an item; PSH on a first segment sends it alone")
    func closing() {
        let spec = TCPSpec(), payload = Self.payload
        let short = spec.segments(Array(payload.prefix(2500)), size: 1000)
        #expect(itemSizes(short + [spec.advanced(by: 2500).packet(payload[2500..<3500])]) == [3, 1])
        var pushed = spec.advanced(by: 1000)
        pushed.flags = ack | psh
        let items = coalesce([Self.segments[0], pushed.packet(payload[1000..<2000]), Self.segments[2]])
        #expect(items.map { $0.header.segmentCount(packetLength: $0.packet.count) } == [2, 1])
        #expect(items[0].packet[53] == ack | psh)
        var first = spec
        first.flags = ack | psh
        #expect(itemSizes([first.packet(payload[0..<1000]), Self.segments[1]]) == [1, 1])
    }

    @Test("other packets pass through alone without closing the flow; at most 64 flows are tracked")
    func passThroughAndBound() {
        let s = Self.segments
        let icmp: [UInt8] = [0x60, 0, 0, 0, 0, 8, 58, 64] + TCPSpec().source + TCPSpec().destination + [128, 0, 0, 0, 0, 0, 0, 0]
        let items = coalesce([s[0], icmp, s[1], [1, 2, 3], s[2]])
        #expect(items.map(\.packet.count) == [72 + 3000, icmp.count, 3])

        var many: [[UInt8]] = []
        for port in 0..<70 {
            var spec = TCPSpec()
            spec.sourcePort = UInt16(port)
            many += spec.segments(Array(Self.payload.prefix(2000)), size: 1000)
        }
        #expect(itemSizes(many) == [Int](repeating: 2, count: TCPCoalescer.maxFlows) + [Int](repeating: 1, count: 12))
    }

    @Test("drain empties the coalescer, which is reusable")
    func reuse() {
        var coalescer = TCPCoalescer()
        var drained: [Int] = []
        for s in Self.segments { coalescer.add(s) }
        coalescer.drain { _, p in drained.append(p.count) }
        coalescer.drain { _, p in drained.append(p.count) }
        for s in Self.segments.prefix(2) { coalescer.add(s) }
        coalescer.drain { _, p in drained.append(p.count) }
        #expect(drained == [72 + 4000, 72 + 2000])
    }

    @Test("a super-packet's 64 KiB buffer is kept and built into again: no allocation per super-packet in steady state")
    func spareBuffers() {
        var coalescer = TCPCoalescer()
        // Nothing here keeps a reference to a drained array (that would make the next write copy it).
        func batch() -> (base: UInt?, bytes: [UInt8], freed: Int) {
            for s in Self.segments { _ = coalescer.add(s) }
            var base: UInt?
            var bytes: [UInt8] = []
            coalescer.drain { header, p in
                if header.segmentCount(packetLength: p.count) > 1 {
                    base = p.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
                    bytes = p.withUnsafeBufferPointer { Array($0) }
                }
            }
            var freed = 0
            while coalescer.popFreed() != nil { freed += 1 }
            return (base, bytes, freed)
        }
        let first = batch(), second = batch(), third = batch()
        #expect(first.base != nil && second.base == first.base && third.base == first.base, "the same buffer each time")
        #expect(first.bytes == second.bytes && second.bytes == third.bytes, "and the same super-packet built in it")
        #expect(first.freed == 0 && second.freed == 1, "from the second batch on, the first segment's own array is freed")
    }
}

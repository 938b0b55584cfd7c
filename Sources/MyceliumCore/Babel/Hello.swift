/// Hello TLV (type 4), body length 6 (spec §5.2).
///
/// ```
/// 0       2       4        6
/// +-------+-------+--------+
/// | flags | seqno | interval (cs) |
/// +-------+-------+--------+
/// ```
/// Only the unicast flag (0x8000) survives decoding, as in Rust. Receivers ignore every field:
/// a Hello just asks for an immediate IHU.
public struct Hello: Hashable, Sendable {
    public static let unicastFlag: UInt16 = 0x8000
    public static let bodyLength = 6

    public var flags: UInt16
    public var seqno: SeqNo
    /// Centiseconds.
    public var interval: UInt16

    public init(flags: UInt16 = Hello.unicastFlag, seqno: SeqNo, interval: UInt16) {
        self.flags = flags & Hello.unicastFlag
        self.seqno = seqno
        self.interval = interval
    }

    init(body reader: inout WireReader) throws(WireError) {
        let flags = try reader.u16()
        let seqno = try reader.u16()
        let interval = try reader.u16()
        self.init(flags: flags, seqno: SeqNo(seqno), interval: interval)
    }

    func writeBody(to out: inout [UInt8]) {
        out.appendU16(flags)
        out.appendU16(seqno.rawValue)
        out.appendU16(interval)
    }
}

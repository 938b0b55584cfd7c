/// The records of a DNS response (RFC 1035 §4, SRV from RFC 2782, AAAA from RFC 3596) that peer
/// discovery reads: SRV, A, AAAA and CNAME of the answer and additional sections.
///
/// ```
/// header (12 bytes)
///   0      2      4        6        8        10       12
///   | id   | flags| qdcount| ancount| nscount| arcount|     flags: QR..RCODE (low 4 bits)
/// question: qname (labels or pointer) | qtype u16 | qclass u16
/// resource record:
///   name (labels, ending in 0 or a 2-byte pointer 0b11xxxxxx xxxxxxxx)
///   type u16 | class u16 | ttl u32 | rdlength u16 | rdata
/// rdata: A = 4 bytes, AAAA = 16 bytes, CNAME = name,
///        SRV = priority u16 | weight u16 | port u16 | target name
/// ```
///
/// The input comes from the network (through the system resolver): every read is bounded,
/// compression pointers may only point backwards (32 at most per name) and a name has at most
/// 255 bytes, so a hostile answer cannot loop, trap or burn CPU; it can only be refused.
public struct DNSMessage: Equatable, Sendable {
    public enum RecordType: UInt16, Sendable {
        case a = 1, cname = 5, srv = 33, aaaa = 28
    }

    public enum RecordData: Equatable, Sendable {
        case a(IPv4Address)
        case aaaa(IPv6Address)
        case cname(String)
        case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
    }

    public struct Record: Equatable, Sendable {
        /// Lowercased, without the trailing dot.
        public let name: String
        public let ttl: UInt32
        public let data: RecordData

        public init(name: String, ttl: UInt32, data: RecordData) {
            self.name = name
            self.ttl = ttl
            self.data = data
        }
    }

    /// RCODE of the header: 0 no error, 3 NXDOMAIN.
    public let responseCode: UInt8
    /// TC: the server left records out (the answer did not fit).
    public let truncated: Bool
    public let answers: [Record]
    public let additional: [Record]

    static let classIN: UInt16 = 1
    static let maxNameBytes = 255
    /// Compression pointers followed per name: a real name needs one or two; a chain of
    /// thousands would cost CPU for every record pointing into it.
    static let maxPointersPerName = 32

    public init(responseCode: UInt8, answers: [Record], additional: [Record], truncated: Bool = false) {
        self.responseCode = responseCode
        self.truncated = truncated
        self.answers = answers
        self.additional = additional
    }

    /// Parses a response; records of other types and classes are skipped.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var reader = WireReader(bytes)
        _ = try reader.u16()
        let flags = try reader.u16()
        guard flags & 0x8000 != 0 else { throw .invalidField("DNS message is not a response") }
        let questions = Int(try reader.u16())
        let answerCount = Int(try reader.u16())
        let authorityCount = Int(try reader.u16())
        let additionalCount = Int(try reader.u16())
        for _ in 0..<questions {
            _ = try Self.name(in: bytes, reader: &reader)
            try reader.skip(4)
        }
        answers = try Self.records(answerCount, in: bytes, reader: &reader)
        _ = try Self.records(authorityCount, in: bytes, reader: &reader)
        additional = try Self.records(additionalCount, in: bytes, reader: &reader)
        responseCode = UInt8(flags & 0x000F)
        truncated = flags & 0x0200 != 0
    }

    private static func records(_ count: Int, in bytes: [UInt8], reader: inout WireReader) throws(WireError) -> [Record] {
        var out: [Record] = []
        for _ in 0..<count {
            let owner = try name(in: bytes, reader: &reader)
            let type = try reader.u16()
            let rclass = try reader.u16()
            let ttl = UInt32(try reader.u16()) << 16 | UInt32(try reader.u16())
            let length = Int(try reader.u16())
            let start = reader.offset
            try reader.skip(length)
            guard rclass == classIN, let known = RecordType(rawValue: type) else { continue }
            var rdata = WireReader(bytes, start: start, end: start + length)
            let data: RecordData
            switch known {
            case .a:
                guard length == 4 else { throw .invalidField("A record of \(length) bytes") }
                data = .a(IPv4Address(bytes: try rdata.take(4)))
            case .aaaa:
                guard length == 16 else { throw .invalidField("AAAA record of \(length) bytes") }
                data = .aaaa(IPv6Address(bytes: try rdata.take(16)))
            case .cname:
                data = .cname(try name(in: bytes, reader: &rdata))
            case .srv:
                let priority = try rdata.u16(), weight = try rdata.u16(), port = try rdata.u16()
                data = .srv(priority: priority, weight: weight, port: port, target: try name(in: bytes, reader: &rdata))
            }
            out.append(Record(name: owner, ttl: ttl, data: data))
        }
        return out
    }

    /// A domain name at the reader's offset, following compression pointers (backwards only).
    static func name(in bytes: [UInt8], reader: inout WireReader) throws(WireError) -> String {
        var labels: [String] = []
        var total = 1  // the root label's zero byte
        var cursor = reader
        var jumped = false
        var lowestTarget = reader.offset
        var jumps = 0
        while true {
            let length = try cursor.u8()
            if length & 0xC0 == 0xC0 {
                let target = Int(length & 0x3F) << 8 | Int(try cursor.u8())
                if !jumped { reader = cursor; jumped = true }
                // Strictly backwards: every jump lands earlier, so the walk ends.
                guard target < lowestTarget else { throw .invalidField("DNS name pointer does not point backwards") }
                jumps += 1
                guard jumps <= maxPointersPerName else { throw .invalidField("DNS name with more than \(maxPointersPerName) pointers") }
                lowestTarget = target
                cursor = WireReader(bytes, start: target, end: bytes.count)
                continue
            }
            guard length & 0xC0 == 0 else { throw .invalidField("DNS label type \(length >> 6) is not supported") }
            if length == 0 { break }
            let label = try cursor.take(Int(length))
            total += Int(length) + 1
            guard total <= maxNameBytes else { throw .invalidField("DNS name longer than \(maxNameBytes) bytes") }
            labels.append(String(decoding: label, as: UTF8.self).lowercased())
        }
        if !jumped { reader = cursor }
        return labels.joined(separator: ".")
    }
}

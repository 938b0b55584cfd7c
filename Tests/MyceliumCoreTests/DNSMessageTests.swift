import MyceliumCore
import Testing

/// DNS responses built byte by byte (RFC 1035 §4): names as labels, compression pointers, records.
enum DNSWire {
    static let a: UInt16 = 1, cname: UInt16 = 5, txt: UInt16 = 16, aaaa: UInt16 = 28, srv: UInt16 = 33, ns: UInt16 = 2

    /// `name` as length-prefixed labels; `terminated: false` leaves the final zero off (to end in a pointer).
    static func labels(_ name: String, terminated: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        for label in name.split(separator: ".") { out.append(UInt8(label.utf8.count)); out += label.utf8 }
        return terminated ? out + [0] : out
    }

    /// A compression pointer to `offset`.
    static func pointer(_ offset: Int) -> [UInt8] { [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)] }

    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func u32(_ v: UInt32) -> [UInt8] { u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) }

    static func header(response: Bool = true, rcode: UInt8 = 0, questions: Int = 0, answers: Int = 0,
                       authority: Int = 0, additional: Int = 0) -> [UInt8] {
        u16(0x1234) + u16((response ? 0x8180 : 0x0100) | UInt16(rcode))
            + [questions, answers, authority, additional].flatMap { u16(UInt16($0)) }
    }

    static func question(_ name: [UInt8], type: UInt16) -> [UInt8] { name + u16(type) + u16(1) }

    static func record(_ owner: [UInt8], type: UInt16, rclass: UInt16 = 1, ttl: UInt32, rdata: [UInt8]) -> [UInt8] {
        owner + u16(type) + u16(rclass) + u32(ttl) + u16(UInt16(rdata.count)) + rdata
    }

    static func srvData(priority: UInt16 = 0, weight: UInt16 = 100, port: UInt16, target: [UInt8]) -> [UInt8] {
        u16(priority) + u16(weight) + u16(port) + target
    }

    static func ipv4(_ text: String) -> [UInt8] { IPv4Address(text)!.bytes }
    static func ipv6(_ text: String) -> [UInt8] { IPv6Address(text)!.bytes }

    /// A response with one question and uncompressed records.
    static func response(question: String, type: UInt16, answers: [[UInt8]] = [], authority: [[UInt8]] = [],
                         additional: [[UInt8]] = [], rcode: UInt8 = 0) -> [UInt8] {
        header(rcode: rcode, questions: 1, answers: answers.count, authority: authority.count, additional: additional.count)
            + self.question(labels(question), type: type) + answers.joined() + authority.joined() + additional.joined()
    }
}

@Suite struct DNSMessageTests {
    typealias W = DNSWire
    static let service = "mycelium-peers.kube-system.svc.cluster.local"
    static let srvOwner = "_mycelium._tcp." + service
    static let pod = "10-0-0-1." + service

    /// What the decoder threw, nil when it accepted `bytes`.
    static func refusal(_ bytes: [UInt8]) -> WireError? {
        do { _ = try DNSMessage(decoding: bytes); return nil } catch { return error }
    }

    /// CoreDNS's answer for a headless Service: the SRV target compressed against the question,
    /// the pod's A and AAAA as glue in the additional section.
    static func coreDNSAnswer() -> [UInt8] {
        var bytes = W.header(questions: 1, answers: 1, additional: 2)
        let questionAt = bytes.count
        bytes += W.question(W.labels(srvOwner), type: W.srv)
        let serviceAt = questionAt + 1 + 9 + 1 + 4  // after "_mycelium" and "_tcp"
        #expect(Array(bytes[serviceAt...].prefix(15)) == W.labels("mycelium-peers", terminated: false))
        let rdataAt = bytes.count + 2 + 10
        bytes += W.record(W.pointer(questionAt), type: W.srv, ttl: 30,
                          rdata: W.srvData(port: 9651, target: W.labels("10-0-0-1", terminated: false) + W.pointer(serviceAt)))
        let targetAt = rdataAt + 6
        bytes += W.record(W.pointer(targetAt), type: W.a, ttl: 20, rdata: W.ipv4("10.0.0.1"))
        bytes += W.record(W.pointer(targetAt), type: W.aaaa, ttl: 25, rdata: W.ipv6("fd00::1"))
        return bytes
    }

    @Test("CoreDNS's SRV answer for a headless Service, with compressed names and A/AAAA glue")
    func coreDNSHeadlessService() throws {
        let message = try DNSMessage(decoding: Self.coreDNSAnswer())
        #expect(message.responseCode == 0)
        #expect(message.answers == [.init(name: Self.srvOwner, ttl: 30,
                                          data: .srv(priority: 0, weight: 100, port: 9651, target: Self.pod))])
        #expect(message.additional == [
            .init(name: Self.pod, ttl: 20, data: .a(IPv4Address("10.0.0.1")!)),
            .init(name: Self.pod, ttl: 25, data: .aaaa(IPv6Address("fd00::1")!)),
        ])
        let targets = PeerDNSRecords.srvTargets(in: message)
        #expect(targets.map(\.target) == [Self.pod] && targets.map(\.port) == [9651] && targets.map(\.ttl) == [30])
        let addresses = PeerDNSRecords.addresses(of: Self.pod, in: message)
        #expect(addresses.map(\.address) == [.v4(IPv4Address("10.0.0.1")!), .v6(IPv6Address("fd00::1")!)])
        #expect(addresses.map(\.ttl) == [20, 25])
        #expect(PeerDNSRecords.srvName(Self.service) == Self.srvOwner)
    }

    @Test("a pointer to a name that itself ends in a pointer is followed; reading resumes after the pointer")
    func pointerChain() throws {
        var bytes = W.header(questions: 1, answers: 2)
        bytes += W.question(W.labels("example.org"), type: W.a)  // "example.org" at 12
        let hostAt = bytes.count
        bytes += W.record(W.labels("host", terminated: false) + W.pointer(12), type: W.a, ttl: 1, rdata: W.ipv4("192.0.2.1"))
        bytes += W.record(W.labels("www", terminated: false) + W.pointer(hostAt), type: W.a, ttl: 2, rdata: W.ipv4("192.0.2.2"))
        let message = try DNSMessage(decoding: bytes)
        #expect(message.answers == [
            .init(name: "host.example.org", ttl: 1, data: .a(IPv4Address("192.0.2.1")!)),
            .init(name: "www.host.example.org", ttl: 2, data: .a(IPv4Address("192.0.2.2")!)),
        ])
    }

    @Test("names are lowercased: owners, CNAME and SRV targets")
    func lowercased() throws {
        let bytes = W.response(question: "Peers.EXAMPLE.org", type: W.srv, answers: [
            W.record(W.labels("Peers.EXAMPLE.org"), type: W.cname, ttl: 5, rdata: W.labels("Svc.Example.ORG")),
            W.record(W.labels("SVC.example.org"), type: W.srv, ttl: 5, rdata: W.srvData(port: 1, target: W.labels("Pod-A.Example.Org"))),
        ])
        let message = try DNSMessage(decoding: bytes)
        #expect(message.answers.map(\.name) == ["peers.example.org", "svc.example.org"])
        #expect(message.answers.map(\.data) == [.cname("svc.example.org"),
                                                .srv(priority: 0, weight: 100, port: 1, target: "pod-a.example.org")])
    }

    @Test("addresses(of:in:) follows a CNAME chain, keeps the smallest TTL and ignores other names")
    func cnameChain() throws {
        let bytes = W.response(question: "peers.example.org", type: W.a, answers: [
            W.record(W.labels("peers.example.org"), type: W.cname, ttl: 300, rdata: W.labels("svc.example.org")),
            W.record(W.labels("svc.example.org"), type: W.cname, ttl: 60, rdata: W.labels("pods.example.net")),
            W.record(W.labels("pods.example.net"), type: W.a, ttl: 120, rdata: W.ipv4("192.0.2.1")),
            W.record(W.labels("other.example.net"), type: W.a, ttl: 120, rdata: W.ipv4("192.0.2.9")),
        ], additional: [
            W.record(W.labels("pods.example.net"), type: W.aaaa, ttl: 30, rdata: W.ipv6("2001:db8::1")),
        ])
        let message = try DNSMessage(decoding: bytes)
        let addresses = PeerDNSRecords.addresses(of: "Peers.Example.ORG.", in: message)
        #expect(addresses.map(\.address) == [.v4(IPv4Address("192.0.2.1")!), .v6(IPv6Address("2001:db8::1")!)])
        #expect(addresses.map(\.ttl) == [60, 30])
        #expect(PeerDNSRecords.addresses(of: "svc.example.org", in: message).map(\.ttl) == [60, 30])
        #expect(PeerDNSRecords.addresses(of: "nowhere.example", in: message).isEmpty)
    }

    @Test("a CNAME loop gives no address and ends")
    func cnameLoop() {
        let message = DNSMessage(responseCode: 0, answers: [
            .init(name: "a.example", ttl: 1, data: .cname("b.example")),
            .init(name: "b.example", ttl: 1, data: .cname("a.example")),
        ], additional: [])
        #expect(PeerDNSRecords.addresses(of: "a.example", in: message).isEmpty)
    }

    /// A loop reached through a backward jump: a skipped TXT record's rdata holds label "a" and a
    /// pointer to that rdata itself; the next record's owner points at the rdata.
    static func loopAfterBackwardJump() -> [UInt8] {
        var bytes = W.header(answers: 2)
        let rdataAt = bytes.count + 1 + 10
        bytes += W.record([0], type: W.txt, ttl: 1, rdata: [1, 0x61] + W.pointer(rdataAt))
        bytes += W.record(W.pointer(rdataAt), type: W.a, ttl: 1, rdata: W.ipv4("192.0.2.1"))
        return bytes
    }

    @Test("compression pointers that do not point strictly backwards are refused", arguments: [
        ("to itself", W.header(questions: 1) + W.question(W.pointer(12), type: W.a)),
        ("forward", W.header(questions: 1) + W.question(W.pointer(14) + W.labels("x"), type: W.a)),
        ("into its own labels", W.header(questions: 1) + W.question(W.labels("ab", terminated: false) + W.pointer(12), type: W.a)),
        ("back to its target after a backward jump", loopAfterBackwardJump()),
    ])
    func pointerLoops(_ what: String, bytes: [UInt8]) {
        let error = Self.refusal(bytes)
        #expect(error?.description.contains("backwards") == true, "\(what): \(String(describing: error))")
    }

    @Test("labels of the reserved 0b01 and 0b10 types are refused", arguments: [UInt8(0x40), 0x80])
    func labelTypes(first: UInt8) {
        let bytes = W.header(questions: 1) + W.question([first, 1, 0x61, 0], type: W.a)
        #expect(Self.refusal(bytes)?.description.contains("label type") == true)
    }

    @Test("every strict prefix of a response is refused as truncated")
    func truncated() throws {
        let bytes = Self.coreDNSAnswer()
        _ = try DNSMessage(decoding: bytes)
        for count in 0..<bytes.count {
            guard case .truncated = Self.refusal(Array(bytes.prefix(count))) else {
                Issue.record("a prefix of \(count) of \(bytes.count) bytes was not refused as truncated")
                return
            }
        }
    }

    @Test("a record whose rdlength runs past the end, or whose name runs past its rdata, is refused")
    func rdataBounds() {
        let past = W.header(questions: 1, answers: 1) + W.question(W.labels("a.example"), type: W.a)
            + W.labels("a.example") + W.u16(W.a) + W.u16(1) + W.u32(1) + W.u16(8) + W.ipv4("192.0.2.1")
        guard case .truncated = Self.refusal(past) else { Issue.record("rdlength past the end accepted"); return }
        let cut = W.response(question: "a.example", type: W.cname, answers: [
            W.labels("a.example") + W.u16(W.cname) + W.u16(1) + W.u32(1) + W.u16(3) + W.labels("b.example"),
        ])
        #expect(Self.refusal(cut) != nil)
    }

    @Test("A records must have 4 bytes and AAAA records 16", arguments: [
        (W.a, 5), (W.a, 3), (W.aaaa, 15), (W.aaaa, 17),
    ])
    func addressLength(type: UInt16, length: Int) {
        let bytes = W.response(question: "a.example", type: type, answers: [
            W.record(W.labels("a.example"), type: type, ttl: 1, rdata: [UInt8](repeating: 1, count: length)),
        ])
        #expect(Self.refusal(bytes) == .invalidField("\(type == W.a ? "A" : "AAAA") record of \(length) bytes"))
    }

    @Test("a query (QR bit clear) is refused")
    func query() {
        let bytes = W.header(response: false, questions: 1) + W.question(W.labels("a.example"), type: W.a)
        #expect(Self.refusal(bytes)?.description.contains("not a response") == true)
        var response = bytes
        response[2] |= 0x80
        #expect(Self.refusal(response) == nil)
    }

    @Test("records of class CH, of other types and of the authority section are skipped; RCODE is kept")
    func skipped() throws {
        let bytes = W.response(question: "a.example", type: W.a, answers: [
            W.record(W.labels("a.example"), type: W.a, rclass: 3, ttl: 1, rdata: W.ipv4("192.0.2.3") + [0]),  // CH, even malformed
            W.record(W.labels("a.example"), type: W.txt, ttl: 1, rdata: [3] + Array("txt".utf8)),
            W.record(W.labels("a.example"), type: W.a, ttl: 7, rdata: W.ipv4("192.0.2.1")),
        ], authority: [
            W.record(W.labels("example"), type: W.ns, ttl: 1, rdata: W.labels("ns.example")),
        ], additional: [
            W.record(W.labels("ns.example"), type: W.a, rclass: 255, ttl: 1, rdata: W.ipv4("192.0.2.53")),
        ], rcode: 3)
        let message = try DNSMessage(decoding: bytes)
        #expect(message.answers == [.init(name: "a.example", ttl: 7, data: .a(IPv4Address("192.0.2.1")!))])
        #expect(message.additional.isEmpty)
        #expect(message.responseCode == 3)
    }

    @Test("a name of more than 255 bytes is refused, also when pointers make it so")
    func longNames() throws {
        let label63 = String(repeating: "a", count: 63)
        let long = Array(repeating: label63, count: 4).joined(separator: ".")  // 4 × 64 + 1 = 257 bytes
        #expect(Self.refusal(W.header(questions: 1) + W.question(W.labels(long), type: W.a))?
            .description.contains("longer than 255") == true)
        // 253 characters (255 bytes on the wire) are accepted.
        let longest = Array(repeating: label63, count: 3).joined(separator: ".") + "." + String(repeating: "b", count: 61)
        let fits = W.response(question: longest, type: W.a, answers: [
            W.record(W.pointer(12), type: W.a, ttl: 1, rdata: W.ipv4("192.0.2.1")),
        ])
        #expect(try DNSMessage(decoding: fits).answers.map(\.name) == [longest])
        // One byte more (254 characters, 256 bytes with the root label) is refused.
        let tooLong = longest + "b"
        #expect(Self.refusal(W.header(questions: 1) + W.question(W.labels(tooLong), type: W.a))?
            .description.contains("longer than 255") == true)
        // 193 bytes in the question, then an owner of one more label pointing to it: 257 bytes.
        let base = Array(repeating: label63, count: 3).joined(separator: ".")
        let compressed = W.response(question: base, type: W.a, answers: [
            W.record(W.labels(label63, terminated: false) + W.pointer(12), type: W.a, ttl: 1, rdata: W.ipv4("192.0.2.1")),
        ])
        #expect(Self.refusal(compressed)?.description.contains("longer than 255") == true)
    }

    @Test("srvTargets: lowest priority first, then by target; port 0 and the root target are skipped")
    func srvTargets() {
        func srv(_ priority: UInt16, _ port: UInt16, _ target: String, ttl: UInt32 = 30) -> DNSMessage.Record {
            .init(name: "_mycelium._tcp.x", ttl: ttl, data: .srv(priority: priority, weight: 1, port: port, target: target))
        }
        let message = DNSMessage(responseCode: 0, answers: [
            srv(10, 9651, "b.x"), srv(0, 9651, "c.x", ttl: 5), srv(0, 0, "a.x"), srv(0, 9652, "a.x"), srv(5, 9651, ""),
            .init(name: "a.x", ttl: 1, data: .a(IPv4Address("192.0.2.1")!)),
        ], additional: [srv(0, 1, "additional.x")])
        let targets = PeerDNSRecords.srvTargets(in: message)
        #expect(targets.map(\.target) == ["a.x", "c.x", "b.x"])
        #expect(targets.map(\.port) == [9652, 9651, 9651])
        #expect(targets.map(\.ttl) == [30, 5, 30])
    }

    static let label63 = String(repeating: "a", count: 63)

    @Test("names we can look up", arguments: [
        "mycelium-peers.kube-system.svc.cluster.local", "a.b.", "_x._tcp.host", "localhost", "A-1.B_2",
        label63, [label63, label63, label63, String(repeating: "b", count: 61)].joined(separator: "."),  // 253 bytes
    ])
    func validNames(name: String) {
        #expect(PeerDNSRecords.isValidName(name))
    }

    @Test("names we refuse", arguments: [
        "", ".", "a..b", ".a", "a.b..", String(repeating: "a", count: 64) + ".b", "a b", "a/b", "a:b", "pöd.example",
        [label63, label63, label63, String(repeating: "b", count: 62)].joined(separator: "."),  // 254 bytes
    ])
    func invalidNames(name: String) {
        #expect(!PeerDNSRecords.isValidName(name), "\(name.utf8.count) bytes")
    }

    /// A name reached through a chain of `jumps` pointers, each pointing at the one before.
    static func pointerChain(_ jumps: Int) -> [UInt8] {
        var bytes = W.header(questions: 1, answers: 2) + W.question(W.labels("a"), type: W.a)
        let chainAt = bytes.count + 2 + 2 + 2 + 4 + 2
        var chain: [UInt8] = []
        for k in 0..<jumps { chain += W.pointer(k == 0 ? 12 : chainAt + 2 * (k - 1)) }
        bytes += W.record(W.pointer(12), type: 16, ttl: 1, rdata: chain)
        bytes += W.record(W.pointer(chainAt + 2 * (jumps - 1)), type: W.a, ttl: 1, rdata: W.ipv4("192.0.2.1"))
        return bytes
    }

    @Test("a name behind more than 32 compression pointers is refused; 20 are followed")
    func pointerChains() throws {
        #expect(try DNSMessage(decoding: Self.pointerChain(20)).answers.map(\.name) == ["a"])
        #expect(Self.refusal(Self.pointerChain(40))?.description.contains("more than 32 pointers") == true)
    }

    @Test("the TC bit is kept")
    func truncatedFlag() throws {
        var bytes = W.response(question: "x.example", type: W.a, answers: [W.record(W.pointer(12), type: W.a, ttl: 1, rdata: W.ipv4("192.0.2.1"))])
        #expect(try DNSMessage(decoding: bytes).truncated == false)
        bytes[2] |= 0x02
        #expect(try DNSMessage(decoding: bytes).truncated == true)
    }
}

import MyceliumCore
import Testing

@Suite struct EndpointTests {
    @Test("valid endpoints parse and print back", arguments: [
        "tcp://1.2.3.4:9651", "tcp://[2a01:4f8:221:1e0b::2]:9651", "quic://[::1]:1", "tls://10.0.0.1:65535",
        "tcp://peer.example.org:9651", "tcp://localhost:9651", "tcp://[fe80::1%3]:9651",
        "quic://[2001:db8::1]:9651?key=\(String(repeating: "ab", count: 32))", "tcp://peer.example:1?key=\(String(repeating: "01", count: 32))",
    ])
    func valid(text: String) throws {
        let e = try Endpoint(parsing: text)
        #expect(e.description == text)
        #expect(try Endpoint(parsing: e.description) == e)
    }

    @Test("host names are lowercased; IPs are typed")
    func hosts() throws {
        #expect(try Endpoint(parsing: "TCP://Peer.Example:9651").host == .name("peer.example"))
        #expect(try Endpoint(parsing: "tcp://1.2.3.4:9651").host == .ip(.v4(IPv4Address("1.2.3.4")!)))
        #expect(try Endpoint(parsing: "tcp://[::1]:9651").socketAddress == "[::1]:9651")
        let linkLocal = try Endpoint(parsing: "tcp://[fe80::1%12]:9651")
        #expect(linkLocal.scopeId == 12 && linkLocal.socketAddress == "[fe80::1%12]:9651")
        #expect(linkLocal != (try Endpoint(parsing: "tcp://[fe80::1%13]:9651")))
        #expect(linkLocal.with(proto: .tls).description == "tls://[fe80::1%12]:9651")
    }

    @Test("?key= pins a public key: kept across transports, upper-case hex accepted, dropped by `address`")
    func pinnedKey() throws {
        let hex = String(repeating: "4F", count: 32)
        let e = try Endpoint(parsing: "tcp://[::1]:9651?key=\(hex)")
        #expect(e.key?.hex == hex.lowercased())
        #expect(e.socketAddress == "[::1]:9651")
        #expect(e.with(proto: .quic).key == e.key)
        #expect(e.address == (try Endpoint(parsing: "tcp://[::1]:9651")) && e.address.key == nil)
        #expect(e != e.address, "a pinned endpoint is another endpoint")
    }

    @Test("bad endpoints give one clear error", arguments: [
        ("1.2.3.4:9651", "no scheme"), ("udp://1.2.3.4:1", "not supported"), ("tcp://1.2.3.4", "port"),
        ("tcp://1.2.3.4:0", "port"), ("tcp://1.2.3.4:70000", "port"), ("tcp://[::1:9651", "host"),
        ("tcp://[zz::1]:9651", "host"), ("tcp://bad_host:1", "host"), ("tcp://1.2.3.456:1", "host"), ("tcp://[::1]9651", "port"),
        ("tcp://[fe80::1%eth0]:9651", "host"), ("tcp://[fe80::1%]:9651", "host"),
        ("tcp://1.2.3.4:9651?key=abcd", "key=<64 hex digits>"), ("tcp://1.2.3.4:9651?pin=\(String(repeating: "ab", count: 32))", "key=<64 hex digits>"),
        ("tcp://1.2.3.4:9651?key=\(String(repeating: "zz", count: 32))", "key="), ("tcp://1.2.3.4:9651?", "key="),
        ("tcp://1.2.3.4:9651?key=\(String(repeating: "ab", count: 32))&x=1", "key="),
    ])
    func invalid(text: String, mentions: String) {
        do {
            _ = try Endpoint(parsing: text)
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.description.contains(mentions), "\(error)")
        }
    }
}

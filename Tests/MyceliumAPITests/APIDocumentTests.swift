import Foundation
import MyceliumAPI
import MyceliumCore
import MyceliumDatapath
import MyceliumNode
import MyceliumTesting
import Testing

/// The API's JSON, byte for byte as serde_json writes it, and the JSON reader the CLI uses.
@Suite struct APIDocumentTests {
    @Test("routes serialise exactly like the api.route_json vector (metric number or \"infinite\")")
    func routeVector() throws {
        let vector = Vectors.vector("api.route_json")
        let entries = vector["json"].array
        #expect(entries.count == 2)
        for entry in entries {
            let metric: Metric = entry["metric"].string == "infinite" ? .infinite : Metric(UInt16(entry["metric"].int!))
            let view = RouteView(subnet: Subnet(entry["subnet"].string!)!, nextHop: entry["nextHop"].string!,
                                 metric: metric, seqno: UInt16(entry["seqno"].int!))
            let ours = APIDocuments.route(view).compact
            // serde_json::to_string of the same struct: members in declaration order, '/' unescaped.
            let nextHop = entry["nextHop"].string!
            let metricText = vector["metric_serialization"][metric.isInfinite ? "Infinite" : "Value(10)"].string!
                .replacingOccurrences(of: "10", with: String(metric.rawValue))
            let expected = "{\"subnet\":\"\(entry["subnet"].string!)\",\"nextHop\":\"\(nextHop)\",\"metric\":\(metricText),\"seqno\":0}"
            #expect(ours == expected)
            #expect(try JSONValue(data: Data(ours.utf8)) == entry)
        }
    }

    @Test("info, peer, queried and packet documents have Rust's member names and order")
    func shapes() throws {
        let key = PublicKey(hex: String(repeating: "ab", count: 32))!
        let info = APIDocuments.info(subnet: key.subnet, address: key.overlayAddress, publicKey: key, startTime: 1_700_000_000)
        #expect(info.compact == "{\"nodeSubnet\":\"\(key.subnet)\",\"nodeIp\":\"\(key.overlayAddress)\",\"nodePubkey\":\"\(key.hex)\",\"nodeStartTime\":1700000000}")
        let endpoint = try Endpoint(parsing: "tcp://[2001:db8::1]:9651")
        #expect(APIDocuments.endpoint(endpoint).compact == #"{"proto":"tcp","addr":{"socket":"[2001:db8::1]:9651"}}"#)
        #expect(APIDocuments.endpoint(try Endpoint(parsing: "tcp://1.2.3.4:9651")).compact
            == #"{"proto":"tcp","addr":{"socket":"1.2.3.4:9651"}}"#)
        #expect(APIDocuments.queried(subnet: key.subnet, secondsLeft: 4).compact == "{\"subnet\":\"\(key.subnet)\",\"expiration\":\"4\"}")
        var traffic = TrafficCounters()
        let a = IPv6Address("400::1")!, b = IPv6Address("400::2")!
        traffic.count(source: a, destination: b, bytes: 100)
        traffic.count(source: a, destination: b, bytes: 50)
        traffic.count(source: b, destination: a, bytes: 10)
        #expect(APIDocuments.packetStats(traffic).compact == """
            {"bySource":[{"ip":"400::1","packetCount":2,"byteCount":150},{"ip":"400::2","packetCount":1,"byteCount":10}],\
            "byDestination":[{"ip":"400::2","packetCount":2,"byteCount":150},{"ip":"400::1","packetCount":1,"byteCount":10}]}
            """)
    }

    @Test("the traffic table stops growing at its limit and counts the rest as overflow")
    func trafficBound() {
        var traffic = TrafficCounters()
        for i in 0..<(TrafficCounters.limit + 10) {
            traffic.count(source: IPv6Address(high: 0x0400 << 48, low: UInt64(i)), destination: IPv6Address("400::1")!, bytes: 1)
        }
        #expect(traffic.bySource.count == TrafficCounters.limit)
        #expect(traffic.overflow == 10)
        #expect(traffic.byDestination.values.first?.packets == UInt64(TrafficCounters.limit + 10))
    }

    @Test("pretty output matches serde_json::to_string_pretty")
    func pretty() {
        let doc = JSON.object([("a", .array([.int(1), .string("x/y")])), ("b", .object([])), ("c", .array([])), ("d", .null)])
        #expect(doc.pretty == "{\n  \"a\": [\n    1,\n    \"x/y\"\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": null\n}")
    }

    @Test("the reader accepts what it writes and what other writers produce")
    func parse() throws {
        let text = #" { "s": "a\"b\\c\/d\u00e9\ud83d\ude00\n", "n": [-1.5e3, 0, 18446744073709551615], "t": true, "f": false, "z": null } "#
        let doc = try JSON(parsing: text)
        #expect(doc["s"]?.string == "a\"b\\c/dé😀\n")
        #expect(doc["n"]?.array?.last?.uint64 == UInt64.max)
        #expect(doc["t"]?.bool == true && doc["z"]?.isNull == true)
        #expect(try JSON(parsing: doc.compact) == doc)
        #expect(try JSON(parsing: doc.pretty) == doc)
        #expect(JSON.quoted("\u{01}\t") == #""\u0001\t""#)
    }

    @Test("malformed JSON is an error with an offset, never a crash", arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "01x", "[1] 2", "\"\\x\"", "\"\\ud800\"", "{\"a\":}", "-",
        String(repeating: "[", count: 10_000),
    ])
    func malformed(_ text: String) {
        #expect(throws: JSON.ParseError.self) { try JSON(parsing: text) }
    }

    @Test("random bytes never crash the reader")
    func fuzz() {
        var rng = SeededRandom(seed: 7)
        let alphabet = Array("{}[]\",:0123456789-+.eEtrufalsn \\u".utf8)
        for _ in 0..<5000 {
            let bytes = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            _ = try? JSON(parsing: bytes)
        }
    }
}

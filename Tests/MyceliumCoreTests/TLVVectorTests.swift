import MyceliumCore
import MyceliumTesting
import Testing

/// Every `babel.*` vector: a vector (or each of its `cases`) gives a TLV body and either the
/// fields it encodes, `result: null` (must be rejected) or `decoded_flags`.
@Suite struct TLVVectorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let id: String
        let tlvName: String
        let encodes: Bool
        let item: JSONValue
        var testDescription: String { id }
    }

    static let cases: [Case] = Vectors.vectors(prefix: "babel.").flatMap { v -> [Case] in
        let id = v["id"].string!
        let parts = id.split(separator: ".")
        let items = v["cases"].array.isEmpty ? [v] : v["cases"].array
        return items.map { Case(id: id, tlvName: String(parts[1]), encodes: parts[2] == "encode", item: $0) }
    }

    @Test("TLV bodies match the vectors", arguments: cases)
    func vector(_ c: Case) throws {
        let body = try #require(c.item["body_hex"].hexBytes, "\(c.id) has no body_hex")
        let type = VectorFields.type(named: c.tlvName)
        if c.item["result"] == .null, c.item.object.keys.contains("result") {
            #expect(throws: WireError.self, "\(c.id) must be rejected") { try ControlTLV.decode(type: type, body: body) }
            return
        }
        let decoded = try ControlTLV.decode(type: type, body: body)
        if let flags = c.item["decoded_flags"].int {
            guard case let .update(u) = decoded else { Issue.record("\(c.id) is not an update"); return }
            #expect(Int(u.flags) == flags)
            return
        }
        let expected = try VectorFields.tlv(named: c.tlvName, fields: c.item["fields"])
        #expect(decoded == expected, "\(c.id): decoded value")
        if c.encodes {
            #expect(Hex.encode(expected.encodeBody()) == Hex.encode(body), "\(c.id): encoded bytes")
        }
    }

    @Test("the body length of every TLV fits the spec's sizes for a /64")
    func specSizes() throws {
        let key = try #require(PublicKey(hex: String(repeating: "11", count: 32)))
        let id = RouterId(publicKey: key, random: 1)
        let subnet = key.subnet
        #expect(ControlTLV.hello(Hello(seqno: SeqNo(1), interval: 2000)).encodeBody().count == 6)
        #expect(ControlTLV.ihu(IHU(rxCost: 1, interval: 6000)).encodeBody().count == 6)
        #expect(ControlTLV.update(Update(interval: 30000, seqno: SeqNo(0), metric: .zero, subnet: subnet, routerId: id)).encodeBody().count == 58)
        #expect(ControlTLV.routeRequest(RouteRequest(prefix: subnet)).encodeBody().count == 11)
        #expect(ControlTLV.seqNoRequest(SeqNoRequest(seqno: SeqNo(1), routerId: id, prefix: subnet)).encodeBody().count == 54)
    }
}

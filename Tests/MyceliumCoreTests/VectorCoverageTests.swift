import MyceliumTesting
import Testing

/// Proves no vector in the fixture file is silently unchecked: every id must belong to a
/// prefix that a generic vector test iterates, or be named by the test that reads it.
@Suite struct VectorCoverageTests {
    static let iteratedPrefixes = ["identity.", "babel.", "frame.control.", "message.", "seqno."]
    static let namedElsewhere = [
        "crypto.x25519_shared_secret_rfc7748",  // MyceliumCryptoTests
        "data.encrypted_l3_packet",  // FrameVectorTests + MyceliumCryptoTests
        "discovery.beacon",  // FrameVectorTests
        "router.route_hold_time", "source_table.feasibility",  // MyceliumRoutingTests
        "api.route_json",  // MyceliumAPITests.APIDocumentTests
    ]

    @Test func everyVectorIsConsumed() {
        #expect(Vectors.allIds.count == 49)
        for id in Vectors.allIds {
            let covered = Self.iteratedPrefixes.contains { id.hasPrefix($0) } || Self.namedElsewhere.contains(id)
            #expect(covered, "vector \(id) is not checked by any test")
        }
    }
}

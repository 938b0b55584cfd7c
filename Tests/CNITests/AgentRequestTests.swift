import MyceliumCNI
import MyceliumJSON
import Testing

/// The agent's socket is its own trust boundary: whatever can open it can send any line, so
/// the agent re-checks what the plugin checks and answers a CNI error, never a trap.
@Suite struct AgentRequestTests {
    static func request(_ fields: String) throws(CNIError) -> AgentRequest {
        let json = try! JSON(parsing: "{\"command\":\"ADD\",\"containerID\":\"c1\",\"ifname\":\"eth0\",\"netns\":\"/var/run/netns/c1\"\(fields)}")
        return try AgentRequest(json: json)
    }

    @Test("an MTU outside 1280…1400 is code 7 (it once reached a UInt32 conversion that trapped on negatives)",
          arguments: ["-1", "0", "1279", "1401", "4294967296", "-9223372036854775808"])
    func mtu(value: String) {
        #expect(throws: CNIError.self) { try Self.request(",\"mtu\":\(value)") }
        do { _ = try Self.request(",\"mtu\":\(value)") } catch { #expect(error.code == CNIError.invalidConfig) }
    }

    @Test("bad container IDs, interface names and netns paths are refused with CNI codes")
    func names() {
        for fields in [",\"interface\":\"a/b\"", ",\"interface\":\"\"", ",\"interface\":\"0123456789abcdef\""] {
            #expect(throws: CNIError.self, "\(fields)") { try Self.request(fields) }
        }
        let badID = try! JSON(parsing: "{\"command\":\"ADD\",\"containerID\":\"a b\",\"ifname\":\"eth0\"}")
        #expect(throws: CNIError.self) { try AgentRequest(json: badID) }
        let badIfname = try! JSON(parsing: "{\"command\":\"ADD\",\"containerID\":\"c1\",\"ifname\":\"../x\"}")
        #expect(throws: CNIError.self) { try AgentRequest(json: badIfname) }
        let longPath = try! JSON(parsing: "{\"command\":\"ADD\",\"containerID\":\"c1\",\"ifname\":\"eth0\",\"netns\":\"/"
            + String(repeating: "a", count: 5000) + "\"}")
        #expect(throws: CNIError.self) { try AgentRequest(json: longPath) }
    }

    @Test("a valid request keeps its values")
    func valid() throws {
        let r = try Self.request(",\"mtu\":1300,\"interface\":\"myc0\"")
        #expect(r.mtu == 1300 && r.interface == "myc0" && r.netns == "/var/run/netns/c1")
    }
}

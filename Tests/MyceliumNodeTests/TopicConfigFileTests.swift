import MyceliumCore
import MyceliumDatapath
import MyceliumNode
import Testing

/// `--topic-config` in Rust's format (spec §7.4): inline tables, sections, the old array form,
/// quoted names with dots, bare addresses; and one clear line for each mistake.
@Suite struct TopicConfigFileTests {
    @Test("every form Rust accepts")
    func forms() throws {
        let config = try TopicConfigFile.parse("""
            default = "Reject"
            "chat.room" = { subnets = ["400::/7", "5f4:2d1:1::1"], forward_socket = "/run/chat.sock" }
            legacy = ["10.0.0.1", "400::/64"]
            [alerts]
            subnets = ["4e7:3a0:4f1:9b2::/64"]   # a section
            [nobody]
            """)
        #expect(config.defaultAccept == false)
        #expect(config.names.map { String(decoding: $0, as: UTF8.self) } == ["alerts", "chat.room", "legacy", "nobody"])
        let chat = try #require(config.topics[Array("chat.room".utf8)])
        #expect(chat.sources == [Subnet("400::/7")!, Subnet("5f4:2d1:1::1/128")!])
        #expect(chat.forwardSocket == "/run/chat.sock")
        #expect(config.topics[Array("legacy".utf8)]?.sources == [Subnet("10.0.0.1/32")!, Subnet("400::/64")!])
        #expect(config.topics[Array("nobody".utf8)]?.sources == [])
        #expect(config.allows(Array("chat.room".utf8), from: IPv6Address("5f4:2d1:1::1")!))
        #expect(!config.allows(Array("nobody".utf8), from: IPv6Address("5f4:2d1:1::1")!))
        #expect(!config.allows(Array("other".utf8), from: IPv6Address("5f4:2d1:1::1")!), "default Reject")
        #expect(try TopicConfigFile.parse("").defaultAccept == true)
    }

    @Test("mistakes are refused with what is wrong", arguments: [
        ("default = \"accept\"", "default must be"),
        ("t = { subnets = [\"nope\"] }", "not a subnet"),
        ("t = { subnet = [\"400::/7\"] }", "unknown key 'subnet'"),
        ("t = { forward_socket = \"relative.sock\" }", "absolute path"),
        ("t = 5", "must be a table"),
        ("[t]\nsubnets = [\"400::/7\"]\n[t]\n", "twice"),
        ("t = { subnets = [\"400::/7\"]", "expected ',' or '}'"),
    ])
    func mistakes(text: String, mentions: String) {
        #expect {
            _ = try TopicConfigFile.parse(text)
        } throws: { error in
            "\(error)".contains(mentions)
        }
    }

    @Test("the node's own config file still refuses tables")
    func configFileRefusesTables() {
        #expect(throws: ConfigFile.ParseError.self) { try ConfigFile.parse("a = { b = 1 }") }
        #expect(throws: ConfigFile.ParseError.self) { try ConfigFile.parse("[a]\nb = 1") }
    }
}

import MyceliumNode
import Testing

@Suite struct ConfigFileTests {
    @Test("the subset Mycelium's config uses: strings, integers, booleans, arrays, comments")
    func parse() throws {
        let values = try ConfigFile.parse("""
            # a comment
            peers = [
              "tcp://1.2.3.4:9651",   # trailing comments
              'tcp://[::1]:9651',
            ]
            tcp_listen_port = 9_651
            firewall_mark = 0x4d59
            no_tun = true
            "tun_name" = "my\\u0063\\"x"
            empty = []
            """)
        #expect(values["peers"] == .array([.string("tcp://1.2.3.4:9651"), .string("tcp://[::1]:9651")]))
        #expect(values["tcp_listen_port"] == .integer(9651))
        #expect(values["firewall_mark"] == .integer(0x4D59))
        #expect(values["no_tun"] == .boolean(true))
        #expect(values["tun_name"] == .string("myc\"x"))
        #expect(values["empty"] == .array([]))
        #expect(try ConfigFile.parse("") == [:])
    }

    @Test("errors carry the line", arguments: [
        ("a = 1\n[table]\n", 2, "tables"),
        ("a = 1\na = 2\n", 2, "twice"),
        ("a = \"open\n", 1, "unterminated"),
        ("a = nope\n", 1, "not a string"),
        ("\n\na.b = 1\n", 3, "dotted"),
        ("a = [1 2]\n", 1, "expected ','"),
        ("a 1\n", 1, "expected '='"),
        ("a = 1 2\n", 1, "unexpected text"),
        ("a = \"\\q\"\n", 1, "escape"),
    ])
    func errors(text: String, line: Int, mentions: String) {
        do {
            _ = try ConfigFile.parse(text)
            Issue.record("parsed: \(text)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.message.contains(mentions), "\(error)")
        }
    }
}

import MyceliumAPI
import Testing

/// Golden output of the CLI's tables, from fixed API documents.
@Suite struct CLIRenderTests {
    @Test func peersTable() throws {
        let doc = try JSON(parsing: """
            [{"endpoint":{"proto":"tcp","addr":{"socket":"[2001:db8::1]:9651"}},"type":"static","connectionState":"alive",\
            "txBytes":1536,"rxBytes":123456789,"discovered":4000,"lastConnected":65},\
            {"endpoint":{"proto":"tcp","addr":{"socket":"10.0.0.2:41234"}},"type":"inbound","connectionState":"alive",\
            "txBytes":10,"rxBytes":0,"discovered":200000,"lastConnected":null}]
            """)
        #expect(CLIRender.peers(doc) == """
            Protocol  Socket              Type     Connection    Rx total  Tx total  Discovered  Last connection
            tcp       [2001:db8::1]:9651  static   alive       117.74 MiB  1.50 KiB       1h06m            1m05s
            tcp       10.0.0.2:41234      inbound  alive              0 B      10 B       2d07h            never
            """)
    }

    @Test("a Pinned key column only when some peer pins one")
    func peersTablePinned() throws {
        let key = String(repeating: "ab", count: 32)
        let doc = try JSON(parsing: """
            [{"endpoint":{"proto":"quic","addr":{"socket":"[2001:db8::1]:9651"}},"type":"static","connectionState":"connecting",\
            "txBytes":0,"rxBytes":0,"discovered":4,"lastConnected":null,"pinnedKey":"\(key)"},\
            {"endpoint":{"proto":"tcp","addr":{"socket":"10.0.0.2:41234"}},"type":"inbound","connectionState":"alive",\
            "txBytes":10,"rxBytes":0,"discovered":20,"lastConnected":null}]
            """)
        #expect(CLIRender.peers(doc) == """
            Protocol  Socket              Type     Connection  Rx total  Tx total  Discovered  Last connection  Pinned key
            quic      [2001:db8::1]:9651  static   connecting       0 B       0 B          4s            never  abababababababab…
            tcp       10.0.0.2:41234      inbound  alive            0 B      10 B         20s            never  -
            """)
    }

    @Test func routesTable() throws {
        let doc = try JSON(parsing: """
            [{"subnet":"406:1d77:2438:aa7c::/64","nextHop":"TCP [2a02::1]:45694 <-> [2a01::2]:9651","metric":20,"seqno":3},\
            {"subnet":"408:7ba3:3a4d:808a::/64","nextHop":"TCP 1.2.3.4:1 <-> 5.6.7.8:9651","metric":"infinite","seqno":65535}]
            """)
        #expect(CLIRender.routes(doc) == """
            Subnet                   Next hop                                  Metric  Seq No
            406:1d77:2438:aa7c::/64  TCP [2a02::1]:45694 <-> [2a01::2]:9651        20       3
            408:7ba3:3a4d:808a::/64  TCP 1.2.3.4:1 <-> 5.6.7.8:9651          infinite   65535
            """)
        #expect(CLIRender.routes(.array([])) == "Subnet  Next hop  Metric  Seq No")
    }

    @Test func sessionsTable() throws {
        let doc = try JSON(parsing: """
            [{"publicKey":"\(String(repeating: "ab", count: 32))","address":"4c9:ba2d::1","state":"up","capable":true,\
            "initiator":true,"ageSeconds":65,"packetsSent":812,"lastReceivedSecondsAgo":0,"fallbackSecondsLeft":0},\
            {"publicKey":"\(String(repeating: "cd", count: 32))","address":"5aa:6b28::1","state":"fallback","capable":false,\
            "initiator":null,"ageSeconds":null,"packetsSent":null,"lastReceivedSecondsAgo":null,"fallbackSecondsLeft":292}]
            """)
        #expect(CLIRender.sessions(doc) == """
            Address      State     Speaks sessions  Role         Age  Packets sent  Last received  Fallback left
            4c9:ba2d::1  up        yes              initiator  1m05s           812         0s ago              -
            5aa:6b28::1  fallback  no               -              -             -              -          4m52s
            """)
    }

    @Test func queriedAndPackets() throws {
        #expect(CLIRender.queried(try JSON(parsing: #"[{"subnet":"5ff::/64","expiration":"4"}]"#)) == """
            Subnet    Query expires in
            5ff::/64                4s
            """)
        let stats = try JSON(parsing: """
            {"bySource":[{"ip":"400::1","packetCount":12,"byteCount":2048}],"byDestination":[]}
            """)
        #expect(CLIRender.packetStats(stats) == """
            By source
            IP      Packets     Bytes
            400::1       12  2.00 KiB

            By destination
            IP  Packets  Bytes
            """)
    }

    @Test func formats() {
        #expect(CLIRender.bytes(0) == "0 B")
        #expect(CLIRender.bytes(1023) == "1023 B")
        #expect(CLIRender.bytes(1024 * 1024 * 1024 * 3) == "3.00 GiB")
        #expect(CLIRender.ago(59) == "59s")
        #expect(CLIRender.ago(3600) == "1h00m")
        #expect(CLIRender.percentEncoded("tcp://[::1]:9651") == "tcp%3A%2F%2F%5B%3A%3A1%5D%3A9651")
    }
}

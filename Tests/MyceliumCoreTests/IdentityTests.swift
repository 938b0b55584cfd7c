import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct IdentityTests {
    /// Every vector that maps a public key to an address (identity.*, with overlay_ipv6).
    static let addressVectors = Vectors.vectors(prefix: "identity.").filter { !$0["overlay_ipv6"].isNull }

    @Test("public key → BLAKE3 → overlay address and /64", arguments: addressVectors.indices)
    func addressDerivation(index: Int) throws {
        let v = Self.addressVectors[index]
        let key = try #require(PublicKey(hex: v["public_key_hex"].string ?? ""))
        if let first16 = v["blake3_first16_of_pubkey_hex"].hexBytes {
            #expect(BLAKE3.hash(key.bytes, length: 16) == first16)
        }
        let expected = try #require(IPv6Address(v["overlay_ipv6"].string ?? ""))
        #expect(key.overlayAddress == expected, "\(v["id"])")
        #expect(key.overlayAddress.description == v["overlay_ipv6"].string)
        if let subnet = v["node_subnet"].string {
            #expect(key.subnet.description == subnet)
            #expect(key.subnet.contains(key.overlayAddress))
        }
        #expect(Subnet.overlay.contains(key.overlayAddress))
    }

    /// The address derivation takes a one-compression path; the general hasher is the reference.
    @Test("the one-block address derivation equals the general BLAKE3 hasher for random keys")
    func oneBlockDerivation() throws {
        var rng = SeededRandom(seed: 0xB1A4E3)
        for _ in 0..<500 {
            let key = try #require(PublicKey(bytes: rng.bytes(32)))
            var h = BLAKE3.hash(key.bytes, length: 16)
            h[0] = 0x04 | UInt8(h[0].nonzeroBitCount & 1)
            #expect(key.overlayAddress == IPv6Address(bytes: h))
        }
    }

    @Test("the stale README addresses (old BLAKE2b derivation) are NOT what we derive")
    func obsoleteReadmeAddresses() throws {
        for c in Vectors.vector("identity.obsolete_blake2b_readme_examples")["cases"].array {
            let key = try #require(PublicKey(hex: c["public_key_hex"].string ?? ""))
            #expect(key.overlayAddress.description != c["old_blake2b_address"].string)
        }
    }

    @Test("router id layout and text form")
    func routerIdLayout() throws {
        let v = Vectors.vector("identity.router_id_layout")
        let key = try #require(PublicKey(hex: v["public_key_hex"].string ?? ""))
        let id = RouterId(publicKey: key, randomBytes: try #require(v["random_hex"].hexBytes))
        #expect(id.bytes == v["router_id_hex"].hexBytes)
        #expect(id.zone == 0)
        #expect(id.description == v["display"].string)
        #expect(RouterId(v["display"].string ?? "") == id)
        #expect(RouterId(bytes: try #require(v["router_id_hex"].hexBytes)) == id)
        #expect(RouterId("nonsense") == nil)
    }

    @Test("public key hex parsing rejects wrong lengths and characters")
    func publicKeyParsing() {
        #expect(PublicKey(hex: String(repeating: "ab", count: 32)) != nil)
        #expect(PublicKey(hex: String(repeating: "AB", count: 32))?.hex == String(repeating: "ab", count: 32))
        #expect(PublicKey(hex: String(repeating: "ab", count: 31)) == nil)
        #expect(PublicKey(hex: String(repeating: "zz", count: 32)) == nil)
        #expect(PublicKey(bytes: [UInt8](repeating: 1, count: 33)) == nil)
    }
}

@Suite struct AddressTextTests {
    @Test("RFC 5952 formatting", arguments: [
        ("520:c662:fd00:9e92:5d99:34ed:ab8:82ab", "520:c662:fd00:9e92:5d99:34ed:ab8:82ab"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:0000:0001:0001:0001:0001:0001", "2001:db8:0:1:1:1:1:1"),
        ("fe80::a:14:1e:28", "fe80::a:14:1e:28"),
        ("400::", "400::"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ])
    func format(input: String, expected: String) throws {
        let a = try #require(IPv6Address(input))
        #expect(a.description == expected)
        #expect(IPv6Address(a.description) == a)
    }

    @Test("invalid IPv6 text is rejected", arguments: [
        "", ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::", "1.2.3.4", "::1.2.3", "::1.2.3.256",
    ])
    func invalid(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test("subnets mask host bits and test containment")
    func subnets() throws {
        let s = try #require(Subnet("520:c662:fd00:9e92:1::5/64"))
        #expect(s.description == "520:c662:fd00:9e92::/64")
        #expect(s.contains(try #require(IPv6Address("520:c662:fd00:9e92:ffff::1"))))
        #expect(!s.contains(try #require(IPv6Address("520:c662:fd00:9e93::1"))))
        #expect(Subnet.overlay.description == "400::/7")
        #expect(Subnet.overlay.contains(s))
        #expect(!Subnet.overlay.contains(try #require(IPv6Address("600::1"))))
        #expect(Subnet("10.101.4.1/23")?.description == "10.101.4.0/23")
        #expect(Subnet("::/129") == nil)
        #expect(Subnet("1.2.3.4/33") == nil)
        #expect(Subnet("1.2.3.4")?.prefixLength == 32)
        #expect(Subnet("::1")?.prefixLength == 128)
        for plen in 0...128 {
            let a = try #require(IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
            let masked = a.masked(to: plen)
            #expect(masked.high.nonzeroBitCount + masked.low.nonzeroBitCount == plen)
        }
    }
}

import MyceliumCore
import MyceliumCrypto
import MyceliumTesting
import Testing

@Suite struct CryptoVectorTests {
    static let alice = Vectors.vector("identity.rfc7748_alice")
    static let bob = Vectors.vector("identity.rfc7748_bob")

    static func secret(_ v: JSONValue) throws -> SecretKey {
        try #require(SecretKey(bytes: v["priv_key_bin_hex"].hexBytes ?? []))
    }

    @Test("priv_key.bin → X25519 public key → address (RFC 7748 keys)", arguments: ["identity.rfc7748_alice", "identity.rfc7748_bob"])
    func publicKeys(id: String) throws {
        let v = Vectors.vector(id)
        let identity = NodeIdentity(secretKey: try Self.secret(v))
        #expect(identity.publicKey.hex == v["public_key_hex"].string)
        #expect(identity.address.description == v["overlay_ipv6"].string)
        #expect(identity.subnet.description == v["node_subnet"].string)
        let routerId = identity.makeRouterId()
        #expect(routerId.publicKey == identity.publicKey && routerId.zone == 0)
    }

    @Test("X25519 shared secret is symmetric and matches the vector")
    func sharedSecret() throws {
        let v = Vectors.vector("crypto.x25519_shared_secret_rfc7748")
        let a = try Self.secret(Self.alice), b = try Self.secret(Self.bob)
        let ab = try #require(a.sharedSecret(with: b.publicKey))
        let ba = try #require(b.sharedSecret(with: a.publicKey))
        #expect(ab == ba)
        #expect(ab == v["shared_secret_hex"].hexBytes)
        #expect(ab == v["aes256gcm_key_hex"].hexBytes)
        // A low-order point gives an all-zero secret, which is refused.
        #expect(a.sharedSecret(with: PublicKey(bytes: [UInt8](repeating: 0, count: 32))!) == nil)
    }

    @Test("AES-256-GCM seal with a fixed nonce reproduces the vector; open recovers it")
    func packetCipher() throws {
        let v = Vectors.vector("data.encrypted_l3_packet")
        let cipher = PacketCipher(key: try #require(v["aes_key_hex"].hexBytes))
        let plaintext = try #require(v["plaintext_hex"].hexBytes)
        let nonce: [UInt8] = try #require(v["nonce_hex"].hexBytes)
        let sealed = cipher.seal(plaintext, nonce: nonce)
        #expect(Hex.encode(sealed) == v["raw_data_hex"].string)
        #expect(try cipher.open(sealed) == plaintext)

        // Bob opens what Alice sealed with the key he derives himself.
        let bobKey = try #require(try Self.secret(Self.bob).sharedSecret(with: try Self.secret(Self.alice).publicKey))
        #expect(try PacketCipher(key: bobKey).open(sealed) == plaintext)
    }

    @Test("tampering anywhere in the payload fails authentication; short payloads are malformed")
    func tamper() throws {
        let cipher = PacketCipher(key: [UInt8](repeating: 9, count: 32))
        let sealed = cipher.seal([1, 0, 0, 0] + Array("hello overlay".utf8))
        for i in sealed.indices {
            var t = sealed
            t[i] ^= 0x01
            #expect(throws: PacketCipher.Failure.authenticationFailed) { try cipher.open(t) }
        }
        #expect(throws: PacketCipher.Failure.self) { try cipher.open(Array(sealed.prefix(31))) }
        let other = PacketCipher(key: [UInt8](repeating: 8, count: 32))
        #expect(throws: PacketCipher.Failure.authenticationFailed) { try other.open(sealed) }
    }

    @Test("random nonces never repeat, also across refills of the nonce pool, and every seal opens")
    func nonces() throws {
        let cipher = PacketCipher(key: [UInt8](repeating: 1, count: 32))
        var seen = Set<[UInt8]>()
        for _ in 0..<1000 {
            let sealed = cipher.seal([1, 0, 0, 0])
            seen.insert(Array(sealed.suffix(12)))
            #expect(try cipher.open(sealed) == [1, 0, 0, 0])
        }
        #expect(seen.count == 1000)
    }
}

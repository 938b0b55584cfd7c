import MyceliumCore
import MyceliumCrypto
import MyceliumTesting
import Testing

/// The datapath's one-allocation seal and open agree with the plain ones, byte for byte.
@Suite struct PacketCipherTests {
    static let key = [UInt8](repeating: 0x42, count: 32)

    @Test("seal(header, body) opens to header ‖ body; openSplit opens what seal(plaintext) sealed")
    func sealAndOpenSplit() throws {
        let sealer = PacketCipher(key: Self.key), opener = PacketCipher(key: Self.key)
        var random = SeededRandom(seed: 3)
        for length in [0, 1, 3, 40, 1280, 1400, 9000] {
            let body = random.bytes(length)
            for type in [UserHeader.PayloadType.ipv6, .message, .outOfBandICMP] {
                let header = UserHeader(type: type)
                let sealed = sealer.seal(header, body)
                #expect(sealed.count == UserHeader.length + length + EncryptedPayload.overhead)
                #expect(try opener.open(sealed) == header.bytes + body)
                let split = try opener.openSplit(sealer.seal(header.bytes + body))
                #expect(split.header == header && split.body == body)
            }
        }
    }

    @Test("openSplit refuses a tampered or too short payload and reports an unknown header as nil")
    func openSplitFailures() throws {
        let cipher = PacketCipher(key: Self.key)
        var sealed = cipher.seal(UserHeader(type: .ipv6), [1, 2, 3])
        sealed[2] ^= 1
        #expect(throws: PacketCipher.Failure.authenticationFailed) { try cipher.openSplit(sealed) }
        // Shorter than a user header: refused by the layout before any decryption.
        #expect(throws: PacketCipher.Failure.self) { try cipher.openSplit(cipher.seal([1, 0])) }
        let unknown = try cipher.openSplit(cipher.seal([1, 9, 0, 0, 5]))
        #expect(unknown.header == nil && unknown.body == [5])
        #expect(throws: PacketCipher.Failure.self) { try cipher.openSplit([1, 2, 3]) }
    }
}

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

    static func base(_ a: [UInt8]) -> UnsafeRawPointer? { a.withUnsafeBytes { $0.baseAddress } }

    @Test("sealInPlace gives seal's bytes (same session nonce) in the packet's own buffer; openInPlace opens it in that buffer")
    func inPlace() throws {
        let sealer = PacketCipher(key: Self.key), opener = PacketCipher(key: Self.key)
        var random = SeededRandom(seed: 5)
        for length in [0, 1, 3, 40, 1280, 1400, 9000] {
            let body = random.bytes(length)
            for type in [UserHeader.PayloadType.ipv6, .message, .sessionConfirm] {
                let header = UserHeader(type: type)
                var packet = body.withUnsafeBytes { EncryptedPayload.sealable($0) }
                let buffer = Self.base(packet)
                sealer.sealInPlace(header, &packet, index: 7, counter: UInt64(length) << 33 | 9)
                #expect(packet == sealer.seal(header, body, index: 7, counter: UInt64(length) << 33 | 9))
                #expect(Self.base(packet) == buffer, "sealed in place: no new buffer")
                #expect(try opener.openInPlace(&packet) == header)
                #expect(packet == body)
                #expect(Self.base(packet) == buffer, "opened in place: no new buffer")
                // Random nonces: opens to the same, both ways round with the copying versions.
                var again = body.withUnsafeBytes { EncryptedPayload.sealable($0) }
                sealer.sealInPlace(header, &again)
                let split = try opener.openSplit(again)
                #expect(split.header == header && split.body == body)
                var copy = sealer.seal(header, body)
                #expect(try opener.openInPlace(&copy) == header)
                #expect(copy == body)
            }
        }
    }

    @Test("sealInPlace is correct without spare capacity (it grows), and leaves a shared copy alone")
    func inPlaceWithoutRoom() throws {
        let cipher = PacketCipher(key: Self.key)
        let body: [UInt8] = [1, 2, 3, 4, 5]
        var packet = body
        let shared = packet
        cipher.sealInPlace(UserHeader(type: .ipv6), &packet)
        #expect(shared == body)
        #expect(try cipher.openSplit(packet).body == body)
    }

    @Test("openInPlace refuses a tampered or too short payload and reports an unknown header as nil")
    func openInPlaceFailures() throws {
        let cipher = PacketCipher(key: Self.key)
        var sealed = cipher.seal(UserHeader(type: .ipv6), [1, 2, 3])
        sealed[2] ^= 1
        #expect(throws: PacketCipher.Failure.authenticationFailed) { try cipher.openInPlace(&sealed) }
        var short = cipher.seal([1, 0])
        #expect(throws: PacketCipher.Failure.self) { try cipher.openInPlace(&short) }
        var unknown = cipher.seal([1, 9, 0, 0, 5])
        #expect(try cipher.openInPlace(&unknown) == nil)
        #expect(unknown == [5])
        var garbage: [UInt8] = [1, 2, 3]
        #expect(throws: PacketCipher.Failure.self) { try cipher.openInPlace(&garbage) }
    }
}

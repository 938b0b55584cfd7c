import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct BLAKE3Tests {
    /// The official input: bytes 0, 1, …, 250 repeating.
    static func input(_ length: Int) -> [UInt8] { (0..<length).map { UInt8($0 % 251) } }

    static let cases = Vectors.blake3["cases"].array

    @Test("official vectors: hash, keyed hash, derive key, extended output", arguments: cases.indices)
    func officialVector(index: Int) throws {
        let c = Self.cases[index]
        let length = try #require(c["input_len"].int)
        let input = Self.input(length)
        let key = Array(try #require(Vectors.blake3["key"].string).utf8)
        let context = try #require(Vectors.blake3["context_string"].string)

        let expectHash = try #require(c["hash"].hexBytes)
        let expectKeyed = try #require(c["keyed_hash"].hexBytes)
        let expectDerive = try #require(c["derive_key"].hexBytes)

        var plain = BLAKE3()
        plain.update(input)
        #expect(plain.finalize(length: expectHash.count) == expectHash, "hash, input length \(length)")
        #expect(plain.finalize() == Array(expectHash.prefix(32)), "default-length hash, input length \(length)")

        var keyed = BLAKE3(key: key)
        keyed.update(input)
        #expect(keyed.finalize(length: expectKeyed.count) == expectKeyed, "keyed hash, input length \(length)")
        #expect(keyed.finalize() == Array(expectKeyed.prefix(32)))

        var derive = BLAKE3(deriveKeyContext: context)
        derive.update(input)
        #expect(derive.finalize(length: expectDerive.count) == expectDerive, "derive key, input length \(length)")
        #expect(derive.finalize() == Array(expectDerive.prefix(32)))
    }

    @Test("incremental updates in odd pieces equal one-shot hashing")
    func incremental() {
        var rng = SeededRandom(seed: 7)
        for length in [0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 3073, 8193, 31_745] {
            let input = Self.input(length)
            var h = BLAKE3()
            var offset = 0
            while offset < length {
                let step = min(Int.random(in: 1...700, using: &rng), length - offset)
                h.update(input[offset..<(offset + step)])
                offset += step
            }
            #expect(h.finalize(length: 100) == BLAKE3.hash(input, length: 100), "length \(length)")
        }
    }
}

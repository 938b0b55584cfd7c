/// BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs), portable Swift.
///
/// Debian packages no BLAKE3 C library, so it lives here. Mycelium uses it for address
/// derivation (32-byte input) and message checksums (whole messages), so this is the plain
/// single-lane tree hasher: a chunk state plus a stack of chaining values, no SIMD lanes.
/// Supports hashing, keyed hashing, key derivation and extended (XOF) output.
public struct BLAKE3: Sendable {
    public static let outputLength = 32
    public static let keyLength = 32
    static let blockLength = 64
    static let chunkLength = 1024

    static let iv: SIMD8<UInt32> = [
        0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A,
        0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19,
    ]

    struct Flags: OptionSet, Sendable {
        let rawValue: UInt32
        static let chunkStart = Flags(rawValue: 1 << 0)
        static let chunkEnd = Flags(rawValue: 1 << 1)
        static let parent = Flags(rawValue: 1 << 2)
        static let root = Flags(rawValue: 1 << 3)
        static let keyedHash = Flags(rawValue: 1 << 4)
        static let deriveKeyContext = Flags(rawValue: 1 << 5)
        static let deriveKeyMaterial = Flags(rawValue: 1 << 6)
    }

    private let key: SIMD8<UInt32>
    private let flags: Flags
    private var chunk: ChunkState
    /// Chaining values of completed subtrees; at most 54 for 2^64 bytes.
    private var stack: [SIMD8<UInt32>] = []

    /// Plain hashing.
    public init() {
        self.init(key: BLAKE3.iv, flags: [])
    }

    /// Keyed hashing (a MAC) with a 32-byte key.
    public init(key: some Collection<UInt8>) {
        precondition(key.count == BLAKE3.keyLength, "BLAKE3 key must be 32 bytes")
        self.init(key: BLAKE3.words8(Array(key)), flags: .keyedHash)
    }

    /// Key derivation: `context` should be a hard-coded, globally unique string.
    public init(deriveKeyContext context: String) {
        var contextHasher = BLAKE3(key: BLAKE3.iv, flags: .deriveKeyContext)
        contextHasher.update(Array(context.utf8))
        let contextKey = contextHasher.finalize(length: 32)
        self.init(key: BLAKE3.words8(contextKey), flags: .deriveKeyMaterial)
    }

    private init(key: SIMD8<UInt32>, flags: Flags) {
        self.key = key
        self.flags = flags
        self.chunk = ChunkState(key: key, counter: 0, flags: flags)
        stack.reserveCapacity(8)
    }

    public mutating func update(_ input: some Collection<UInt8>) {
        if let done = input.withContiguousStorageIfAvailable({ update(buffer: UnsafeRawBufferPointer($0)) }) {
            return done
        }
        Array(input).withUnsafeBytes { update(buffer: $0) }
    }

    public mutating func update(buffer: UnsafeRawBufferPointer) {
        var input = buffer[...]
        while !input.isEmpty {
            if chunk.length == BLAKE3.chunkLength {
                let cv = chunk.output().chainingValue()
                let total = chunk.counter + 1
                pushChunk(cv, totalChunks: total)
                chunk = ChunkState(key: key, counter: total, flags: flags)
            }
            let take = min(BLAKE3.chunkLength - chunk.length, input.count)
            chunk.update(UnsafeRawBufferPointer(rebasing: input.prefix(take)))
            input = input.dropFirst(take)
        }
    }

    /// Merges completed subtrees: the number of trailing zero bits of the chunk count says how many.
    private mutating func pushChunk(_ cv: SIMD8<UInt32>, totalChunks: UInt64) {
        var cv = cv
        var total = totalChunks
        while total & 1 == 0 {
            cv = BLAKE3.parentOutput(left: stack.removeLast(), right: cv, key: key, flags: flags).chainingValue()
            total >>= 1
        }
        stack.append(cv)
    }

    /// The first `length` bytes of the output stream (XOF); 32 is the standard digest.
    public func finalize(length: Int = BLAKE3.outputLength) -> [UInt8] {
        var output = chunk.output()
        var remaining = stack.count
        while remaining > 0 {
            remaining -= 1
            output = BLAKE3.parentOutput(left: stack[remaining], right: output.chainingValue(), key: key, flags: flags)
        }
        return output.rootBytes(length: length)
    }

    /// The first 16 bytes of the plain hash of exactly 32 bytes given as eight little-endian
    /// words: one compression, no hasher state and no arrays (address derivation, once per
    /// new subnet in every Update flood). Equal to `hash(bytes)[0..<16]` (tested).
    static func hash32(words: SIMD8<UInt32>) -> SIMD4<UInt32> {
        var block = SIMD16<UInt32>()
        block.lowHalf = words
        let flags = Flags([.chunkStart, .chunkEnd, .root]).rawValue
        let out = compress(cv: iv, block: block, counter: 0, blockLength: 32, flags: flags)
        return SIMD4(out[0], out[1], out[2], out[3])
    }

    /// One-shot plain hash.
    public static func hash(_ input: some Collection<UInt8>, length: Int = outputLength) -> [UInt8] {
        var h = BLAKE3()
        h.update(input)
        return h.finalize(length: length)
    }

    // MARK: - internals

    static func words8(_ bytes: [UInt8]) -> SIMD8<UInt32> {
        var w = SIMD8<UInt32>()
        for i in 0..<8 {
            w[i] = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8 | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
        }
        return w
    }

    static func parentOutput(left: SIMD8<UInt32>, right: SIMD8<UInt32>, key: SIMD8<UInt32>, flags: Flags) -> Output {
        var block = SIMD16<UInt32>()
        block.lowHalf = left
        block.highHalf = right
        return Output(inputCV: key, block: block, counter: 0, blockLength: UInt32(blockLength), flags: flags.union(.parent))
    }

    struct Output {
        let inputCV: SIMD8<UInt32>
        let block: SIMD16<UInt32>
        let counter: UInt64
        let blockLength: UInt32
        let flags: Flags

        func chainingValue() -> SIMD8<UInt32> {
            BLAKE3.compress(cv: inputCV, block: block, counter: counter, blockLength: blockLength, flags: flags.rawValue).lowHalf
        }

        func rootBytes(length: Int) -> [UInt8] {
            var out = [UInt8]()
            out.reserveCapacity(length)
            var blockCounter: UInt64 = 0
            while out.count < length {
                let words = BLAKE3.compress(cv: inputCV, block: block, counter: blockCounter, blockLength: blockLength,
                                            flags: flags.union(.root).rawValue)
                for i in 0..<16 where out.count < length {
                    let w = words[i]
                    for shift: UInt32 in [0, 8, 16, 24] where out.count < length {
                        out.append(UInt8(truncatingIfNeeded: w >> shift))
                    }
                }
                blockCounter += 1
            }
            return out
        }
    }

    struct ChunkState {
        var cv: SIMD8<UInt32>
        let counter: UInt64
        var block = SIMD16<UInt32>()
        var blockLength = 0
        var blocksCompressed = 0
        let flags: Flags

        init(key: SIMD8<UInt32>, counter: UInt64, flags: Flags) {
            self.cv = key
            self.counter = counter
            self.flags = flags
        }

        var length: Int { BLAKE3.blockLength * blocksCompressed + blockLength }

        private var startFlag: Flags { blocksCompressed == 0 ? .chunkStart : [] }

        mutating func update(_ input: UnsafeRawBufferPointer) {
            var index = 0
            while index < input.count {
                if blockLength == BLAKE3.blockLength {
                    cv = BLAKE3.compress(cv: cv, block: block, counter: counter, blockLength: UInt32(BLAKE3.blockLength),
                                         flags: flags.union(startFlag).rawValue).lowHalf
                    blocksCompressed += 1
                    block = SIMD16<UInt32>()
                    blockLength = 0
                }
                let take = min(BLAKE3.blockLength - blockLength, input.count - index)
                for j in 0..<take {
                    let position = blockLength + j
                    block[position >> 2] |= UInt32(input[index + j]) << UInt32((position & 3) * 8)
                }
                blockLength += take
                index += take
            }
        }

        func output() -> Output {
            Output(inputCV: cv, block: block, counter: counter, blockLength: UInt32(blockLength),
                   flags: flags.union(startFlag).union(.chunkEnd))
        }
    }

    @inline(__always)
    static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }

    /// The compression function, on scalar locals: the state lives in registers and the message
    /// permutation is a renaming, so no array or vector is indexed at run time.
    static func compress(cv: SIMD8<UInt32>, block: SIMD16<UInt32>, counter: UInt64, blockLength: UInt32, flags: UInt32) -> SIMD16<UInt32> {
        var v0 = cv[0], v1 = cv[1], v2 = cv[2], v3 = cv[3], v4 = cv[4], v5 = cv[5], v6 = cv[6], v7 = cv[7]
        var v8 = iv[0], v9 = iv[1], v10 = iv[2], v11 = iv[3]
        var v12 = UInt32(truncatingIfNeeded: counter), v13 = UInt32(truncatingIfNeeded: counter >> 32)
        var v14 = blockLength, v15 = flags
        var m0 = block[0], m1 = block[1], m2 = block[2], m3 = block[3], m4 = block[4], m5 = block[5]
        var m6 = block[6], m7 = block[7], m8 = block[8], m9 = block[9], m10 = block[10], m11 = block[11]
        var m12 = block[12], m13 = block[13], m14 = block[14], m15 = block[15]

        @inline(__always)
        func g(_ a: inout UInt32, _ b: inout UInt32, _ c: inout UInt32, _ d: inout UInt32, _ x: UInt32, _ y: UInt32) {
            a = a &+ b &+ x
            d = rotr(d ^ a, 16)
            c = c &+ d
            b = rotr(b ^ c, 12)
            a = a &+ b &+ y
            d = rotr(d ^ a, 8)
            c = c &+ d
            b = rotr(b ^ c, 7)
        }

        for round in 0..<7 {
            g(&v0, &v4, &v8, &v12, m0, m1)
            g(&v1, &v5, &v9, &v13, m2, m3)
            g(&v2, &v6, &v10, &v14, m4, m5)
            g(&v3, &v7, &v11, &v15, m6, m7)
            g(&v0, &v5, &v10, &v15, m8, m9)
            g(&v1, &v6, &v11, &v12, m10, m11)
            g(&v2, &v7, &v8, &v13, m12, m13)
            g(&v3, &v4, &v9, &v14, m14, m15)
            if round < 6 {
                // Permutation [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8].
                (m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15) =
                    (m2, m6, m3, m10, m7, m0, m4, m13, m1, m11, m12, m5, m9, m14, m15, m8)
            }
        }
        let s = SIMD16<UInt32>(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15)
        let low = s.lowHalf ^ s.highHalf
        let high = s.highHalf ^ cv
        var out = SIMD16<UInt32>()
        out.lowHalf = low
        out.highHalf = high
        return out
    }
}

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

    /// Message word order for each of the 7 rounds (the permutation applied repeatedly).
    static let schedule: [[Int]] = {
        let permutation = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
        var rounds = [Array(0..<16)]
        for _ in 1..<7 {
            let last = rounds[rounds.count - 1]
            rounds.append(permutation.map { last[$0] })
        }
        return rounds
    }()

    @inline(__always)
    static func g(_ s: inout SIMD16<UInt32>, _ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt32, _ y: UInt32) {
        s[a] = s[a] &+ s[b] &+ x
        s[d] = rotr(s[d] ^ s[a], 16)
        s[c] = s[c] &+ s[d]
        s[b] = rotr(s[b] ^ s[c], 12)
        s[a] = s[a] &+ s[b] &+ y
        s[d] = rotr(s[d] ^ s[a], 8)
        s[c] = s[c] &+ s[d]
        s[b] = rotr(s[b] ^ s[c], 7)
    }

    @inline(__always)
    static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }

    static func compress(cv: SIMD8<UInt32>, block m: SIMD16<UInt32>, counter: UInt64, blockLength: UInt32, flags: UInt32) -> SIMD16<UInt32> {
        var s = SIMD16<UInt32>()
        s.lowHalf = cv
        s[8] = iv[0]; s[9] = iv[1]; s[10] = iv[2]; s[11] = iv[3]
        s[12] = UInt32(truncatingIfNeeded: counter)
        s[13] = UInt32(truncatingIfNeeded: counter >> 32)
        s[14] = blockLength
        s[15] = flags
        for r in 0..<7 {
            let o = schedule[r]
            g(&s, 0, 4, 8, 12, m[o[0]], m[o[1]])
            g(&s, 1, 5, 9, 13, m[o[2]], m[o[3]])
            g(&s, 2, 6, 10, 14, m[o[4]], m[o[5]])
            g(&s, 3, 7, 11, 15, m[o[6]], m[o[7]])
            g(&s, 0, 5, 10, 15, m[o[8]], m[o[9]])
            g(&s, 1, 6, 11, 12, m[o[10]], m[o[11]])
            g(&s, 2, 7, 8, 13, m[o[12]], m[o[13]])
            g(&s, 3, 4, 9, 14, m[o[14]], m[o[15]])
        }
        let low = s.lowHalf ^ s.highHalf
        let high = s.highHalf ^ cv
        var out = SIMD16<UInt32>()
        out.lowHalf = low
        out.highHalf = high
        return out
    }
}

/// Base64 with the standard alphabet and padding (RFC 4648 §4), as Rust Mycelium's API uses for
/// message payloads and topics. Decoding is canonical, like Rust's `base64` default engine:
/// padding required, no whitespace, unused bits zero.
///
/// Why not a library: Foundation's `Data(base64Encoded:)` would bring full Foundation (and ICU)
/// back into the static binary (see the CLI test `noFullFoundation`).
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        let length = (input.count + 2) / 3 * 4
        guard length > 0 else { return "" }
        return String(unsafeUninitializedCapacity: length) { out in
            input.withUnsafeBufferPointer { inp in
                alphabet.withUnsafeBufferPointer { abc in
                    var i = 0, o = 0
                    while i + 3 <= inp.count {
                        let n = UInt32(inp[i]) << 16 | UInt32(inp[i + 1]) << 8 | UInt32(inp[i + 2])
                        out[o] = abc[Int(n >> 18)]
                        out[o + 1] = abc[Int(n >> 12 & 63)]
                        out[o + 2] = abc[Int(n >> 6 & 63)]
                        out[o + 3] = abc[Int(n & 63)]
                        i += 3
                        o += 4
                    }
                    let left = inp.count - i
                    if left > 0 {
                        let n = UInt32(inp[i]) << 16 | (left == 2 ? UInt32(inp[i + 1]) << 8 : 0)
                        out[o] = abc[Int(n >> 18)]
                        out[o + 1] = abc[Int(n >> 12 & 63)]
                        out[o + 2] = left == 2 ? abc[Int(n >> 6 & 63)] : UInt8(ascii: "=")
                        out[o + 3] = UInt8(ascii: "=")
                    }
                }
            }
            return length
        }
    }

    /// Nil unless `text` is canonical padded base64.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var text = String(text)
        return text.withUTF8 { s -> [UInt8]? in
            guard s.count % 4 == 0 else { return nil }
            guard !s.isEmpty else { return [] }
            let pad = s[s.count - 1] == UInt8(ascii: "=") ? (s[s.count - 2] == UInt8(ascii: "=") ? 2 : 1) : 0
            let length = s.count / 4 * 3 - pad
            var failed = false
            let out = [UInt8](unsafeUninitializedCapacity: length) { out, count in
                values.withUnsafeBufferPointer { table in
                    var i = 0, o = 0
                    while i < s.count {
                        let last = i + 4 == s.count
                        let digits = last ? 4 - pad : 4
                        var n: UInt32 = 0
                        for j in 0..<digits {
                            let v = table[Int(s[i + j])]
                            if v == 0xFF { failed = true; return }
                            n |= UInt32(v) << (18 - 6 * UInt32(j))
                        }
                        switch digits {
                        case 4:
                            out[o] = UInt8(n >> 16); out[o + 1] = UInt8(n >> 8 & 0xFF); out[o + 2] = UInt8(n & 0xFF)
                            o += 3
                        case 3:
                            if n & 0xFF != 0 { failed = true; return }
                            out[o] = UInt8(n >> 16); out[o + 1] = UInt8(n >> 8 & 0xFF)
                            o += 2
                        default:
                            if n & 0xFFFF != 0 { failed = true; return }
                            out[o] = UInt8(n >> 16)
                            o += 1
                        }
                        i += 4
                    }
                    count = o
                }
                if failed { count = 0 }
            }
            return failed ? nil : out
        }
    }
}

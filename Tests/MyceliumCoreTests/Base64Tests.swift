import MyceliumCore
import Testing

/// Base64 (RFC 4648 §4, padded, canonical as Rust's default engine decodes it).
@Suite struct Base64Tests {
    @Test("RFC 4648 §10 vectors both ways")
    func vectors() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                                 ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
    }

    @Test("random bytes round-trip, every length up to 300 and one large")
    func roundTrip() {
        var g = SystemRandomNumberGenerator()
        for length in Array(0...300) + [1 << 20] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes, "length \(length)")
        }
    }

    @Test("not canonical base64 is refused", arguments: ["Zg", "Zg=", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n", "Zg==Zg==", "Zm9-", "=Zm9"])
    func refused(text: String) {
        #expect(Base64.decode(text) == nil)
    }
}

import CSodium

/// libsodium must be initialised once before use; this does it on first touch.
enum Sodium {
    static let ready: Bool = sodium_init() >= 0

    static func ensureReady() {
        precondition(ready, "libsodium failed to initialise")
    }
}

/// Random bytes from the OS CSPRNG (libsodium `randombytes_buf`).
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        Sodium.ensureReady()
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 { out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) } }
        return out
    }

    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        Sodium.ensureReady()
        if let base = buffer.baseAddress { randombytes_buf(base, buffer.count) }
    }

    public static func u64() -> UInt64 {
        bytes(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Wiping of secrets held in Swift arrays (key-file buffers, shared secrets) once they have
/// been handed to the library that keeps its own copy. `sodium_memzero` is not optimised away.
public enum SecureMemory {
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress { sodium_memzero(base, raw.count) }
        }
    }
}

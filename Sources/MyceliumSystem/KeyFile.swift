#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import MyceliumCrypto

/// The node key file (spec §1.1): exactly the 32 raw X25519 secret bytes, mode 0640.
///
/// Loading reads the first 32 bytes (extra bytes are ignored, as in Rust). Creating never
/// replaces an existing file unless asked to, and a replacement is atomic (write + rename), so
/// a crash never leaves a node without its identity.
public enum KeyFile {
    public static let mode: UInt32 = 0o640

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notFound(path: String)
        case tooShort(path: String, length: Int)
        case unreadable(path: String, errno: Int32)
        case alreadyExists(path: String)
        case writeFailed(path: String, errno: Int32)
        /// Group or others may write it: anyone who can replace the key can become this node.
        case insecureMode(path: String, mode: UInt32)

        public var description: String {
            switch self {
            case let .notFound(path): "key file \(path) does not exist"
            case let .tooShort(path, length): "key file \(path) holds \(length) bytes; a key file holds 32"
            case let .unreadable(path, e): "cannot read key file \(path): \(String(cString: strerror(e)))"
            case let .alreadyExists(path): "key file \(path) already exists (use --force to replace it)"
            case let .writeFailed(path, e): "cannot write key file \(path): \(String(cString: strerror(e)))"
            case let .insecureMode(path, mode):
                "key file \(path) is writable by group or others (mode \(String(mode & 0o777, radix: 8))); run chmod 600 \(path)"
            }
        }
    }

    /// Reads the secret key at `path`.
    public static func load(path: String) throws(Failure) -> SecretKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw e == ENOENT ? .notFound(path: path) : .unreadable(path: path, errno: e)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, errno: errno) }
        guard UInt32(info.st_mode) & 0o022 == 0 else { throw .insecureMode(path: path, mode: UInt32(info.st_mode)) }
        var bytes = [UInt8](repeating: 0, count: SecretKey.length)
        defer { SecureMemory.wipe(&bytes) }
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, errno: errno)
            }
            if n == 0 { break }
            got += n
        }
        guard got == SecretKey.length else { throw .tooShort(path: path, length: got) }
        return SecretKey(bytes: bytes)!
    }

    /// Loads the key at `path`, creating a new random one first if the file does not exist.
    public static func loadOrCreate(path: String) throws(Failure) -> (key: SecretKey, created: Bool) {
        do {
            return (try load(path: path), false)
        } catch .notFound {
            let key = SecretKey.generate()
            do {
                try write(key, to: path, replace: false)
            } catch .alreadyExists {
                return (try load(path: path), false)  // lost a race with another writer: use theirs
            }
            return (key, true)
        }
    }

    /// Writes `key` to `path` with mode 0640, creating parent directories.
    /// Without `replace`, an existing file is an error and is left untouched.
    public static func write(_ key: SecretKey, to path: String, replace: Bool) throws(Failure) {
        try makeParentDirectories(of: path)
        guard replace else {
            // O_EXCL: the kernel refuses if the file exists, so nothing is ever overwritten.
            var raw = key.rawBytes
            defer { SecureMemory.wipe(&raw) }
            try create(path, flags: O_EXCL | O_NOFOLLOW, bytes: raw)
            return
        }
        let temporary = path + ".tmp-\(getpid())"
        // O_EXCL|O_NOFOLLOW: never write a key through a link someone planted at the temporary
        // name; a leftover of a crashed run with our pid is removed first.
        unlink(temporary)
        var raw = key.rawBytes
        defer { SecureMemory.wipe(&raw) }
        try create(temporary, flags: O_EXCL | O_NOFOLLOW, bytes: raw)
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw .writeFailed(path: path, errno: e)
        }
    }

    /// Creates `path` (with the extra open `flags`), writes `bytes`, syncs; removes it on failure.
    private static func create(_ path: String, flags: Int32, bytes: [UInt8]) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode)
        guard fd >= 0 else {
            let e = errno
            throw e == EEXIST ? .alreadyExists(path: path) : .writeFailed(path: path, errno: e)
        }
        do {
            try writeAll(fd: fd, bytes, path: path)
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        close(fd)
    }

    private static func writeAll(fd: Int32, _ bytes: [UInt8], path: String) throws(Failure) {
        // The umask may have narrowed the mode at creation; the file mode is part of the format.
        guard fchmod(fd, mode) == 0 else { throw .writeFailed(path: path, errno: errno) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .writeFailed(path: path, errno: errno)
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw .writeFailed(path: path, errno: errno) }
    }

    private static func makeParentDirectories(of path: String) throws(Failure) {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw .writeFailed(path: current, errno: errno)
            }
        }
    }
}

/// Where Rust Mycelium keeps its key: `$XDG_DATA_HOME` or `~/.local/share`, then `mycelium/priv_key.bin`.
public enum DefaultPaths {
    public static func keyFile(environment: [String: String]) -> String {
        if let xdg = environment["XDG_DATA_HOME"], !xdg.isEmpty {
            return xdg + "/mycelium/priv_key.bin"
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/root"
        return home + "/.local/share/mycelium/priv_key.bin"
    }
}

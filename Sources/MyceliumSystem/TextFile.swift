#if canImport(Glibc)
import Glibc
#endif

/// Small text files (configuration), read whole.
public enum TextFile {
    public static let maxLength = 1 << 20

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The names in a directory (without . and ..); empty if it cannot be read.
    public static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    public static func read(_ path: String) throws(SystemError) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// A whole file's bytes, at most `limit`.
    public static func readBytes(_ path: String, limit: Int = maxLength) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("read \(path)", errno: errno) }
        defer { close(fd) }
        return try readAll(fd, limit: limit, what: "read \(path)")
    }

    /// Standard input until its end, at most `limit` bytes.
    public static func readStandardInput(limit: Int) throws(SystemError) -> [UInt8] {
        try readAll(STDIN_FILENO, limit: limit, what: "read standard input")
    }

    private static func readAll(_ fd: Int32, limit: Int, what: String) throws(SystemError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while bytes.count <= limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError(what, errno: errno)
            }
            if n == 0 { return bytes }
            bytes += chunk[..<n]
        }
        throw SystemError("\(what) (larger than \(limit) bytes)", errno: EFBIG)
    }

    /// Replaces `path` atomically: a temporary file in the same directory is written, synced
    /// and renamed over it, and the directory is synced, so a crash leaves the old or the new
    /// content, never a mix.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws(SystemError) {
        let temporary = path + ".tmp.\(getpid())"
        // O_EXCL|O_NOFOLLOW: a link planted at the temporary name is never written through; a
        // leftover of a crashed run with our pid is removed first.
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("write \(temporary)", errno: errno) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                close(fd)
                unlink(temporary)
                throw SystemError("write \(temporary)", errno: e)
            }
            done += n
        }
        _ = fchmod(fd, mode)
        guard fsync(fd) == 0 else {
            let e = errno
            close(fd)
            unlink(temporary)
            throw SystemError("sync \(temporary)", errno: e)
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw SystemError("rename \(temporary) to \(path)", errno: e)
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    /// `mkdir -p` with `mode` for the directories it creates.
    public static func makeDirectories(_ path: String, mode: UInt32 = 0o755) throws(SystemError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0, errno != EEXIST { throw SystemError("create directory \(current)", errno: errno) }
        }
    }

    /// Writes a small value to a file that exists (a sysctl under /proc/sys, say).
    public static func overwrite(_ path: String, _ text: String) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(path)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw SystemError("write \(path)", errno: errno) }
    }
}

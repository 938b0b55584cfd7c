import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MyceliumCrypto
import MyceliumSystem
import Testing

@Suite struct KeyFileTests {
    /// A fresh directory per test, removed afterwards.
    final class TempDir {
        let path: String
        init() {
            path = NSTemporaryDirectory() + "mycelium-keyfile-" + UUID().uuidString
            try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test("a new key file holds exactly the 32 raw bytes, mode 0640, parents created")
    func create() throws {
        let dir = TempDir()
        let path = dir.path + "/nested/deeper/priv_key.bin"
        let key = SecretKey.generate()
        let oldMask = umask(0o077)  // a strict umask must not change the file mode
        defer { umask(oldMask) }
        try KeyFile.write(key, to: path, replace: false)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(data) == key.rawBytes)
        #expect(try Self.mode(path) == 0o640)
        #expect(try KeyFile.load(path: path).publicKey == key.publicKey)
    }

    @Test("an existing key file is never replaced without force")
    func refuseOverwrite() throws {
        let dir = TempDir()
        let path = dir.path + "/priv_key.bin"
        let first = SecretKey.generate()
        try KeyFile.write(first, to: path, replace: false)
        #expect(throws: KeyFile.Failure.alreadyExists(path: path)) {
            try KeyFile.write(SecretKey.generate(), to: path, replace: false)
        }
        #expect(try KeyFile.load(path: path).rawBytes == first.rawBytes)
        let (loaded, created) = try KeyFile.loadOrCreate(path: path)
        #expect(!created && loaded.rawBytes == first.rawBytes)

        let second = SecretKey.generate()
        try KeyFile.write(second, to: path, replace: true)
        #expect(try KeyFile.load(path: path).rawBytes == second.rawBytes)
        #expect(try Self.mode(path) == 0o640)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["priv_key.bin"])
    }

    @Test("a short file is an error; extra bytes are ignored; a missing file is reported")
    func loadRules() throws {
        let dir = TempDir()
        let short = dir.path + "/short.bin"
        _ = FileManager.default.createFile(atPath: short, contents: Data(repeating: 1, count: 31))
        #expect(throws: KeyFile.Failure.tooShort(path: short, length: 31)) { try KeyFile.load(path: short) }
        #expect("\(KeyFile.Failure.tooShort(path: short, length: 31))".contains("31 bytes"))

        let long = dir.path + "/long.bin"
        _ = FileManager.default.createFile(atPath: long, contents: Data((0..<40).map { UInt8($0) }))
        #expect(try KeyFile.load(path: long).rawBytes == Array(0..<32))

        let missing = dir.path + "/missing.bin"
        #expect(throws: KeyFile.Failure.notFound(path: missing)) { try KeyFile.load(path: missing) }
        let (created, isNew) = try KeyFile.loadOrCreate(path: missing)
        #expect(isNew)
        #expect(try KeyFile.load(path: missing).rawBytes == created.rawBytes)
    }

    @Test("a key file group or others may write is refused, with the chmod that fixes it")
    func insecureMode() throws {
        let dir = TempDir()
        let path = dir.path + "/key.bin"
        try KeyFile.write(SecretKey.generate(), to: path, replace: false)
        for mode: mode_t in [0o660, 0o646, 0o666] {
            chmod(path, mode)
            #expect(throws: KeyFile.Failure.insecureMode(path: path, mode: UInt32(0o100000 | mode))) { try KeyFile.load(path: path) }
        }
        #expect("\(KeyFile.Failure.insecureMode(path: path, mode: 0o100660))".contains("chmod 600"))
        chmod(path, 0o640)
        _ = try KeyFile.load(path: path)
    }

    @Test("a link planted at the temporary name is never written through (key file and state files)")
    func plantedLink() throws {
        let dir = TempDir()
        let victim = dir.path + "/victim"
        _ = FileManager.default.createFile(atPath: victim, contents: Data("untouched".utf8))
        let key = dir.path + "/key.bin"
        try FileManager.default.createSymbolicLink(atPath: key + ".tmp-\(getpid())", withDestinationPath: victim)
        try KeyFile.write(SecretKey.generate(), to: key, replace: true)
        let state = dir.path + "/state.json"
        try FileManager.default.createSymbolicLink(atPath: state + ".tmp.\(getpid())", withDestinationPath: victim)
        try TextFile.writeAtomically(state, Array("{}".utf8))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "untouched")
        #expect(try KeyFile.load(path: key).rawBytes.count == 32)
        #expect(try String(contentsOfFile: state, encoding: .utf8) == "{}")
    }

    @Test("the default path follows XDG_DATA_HOME, else HOME/.local/share")
    func defaultPath() {
        #expect(DefaultPaths.keyFile(environment: ["XDG_DATA_HOME": "/x", "HOME": "/h"]) == "/x/mycelium/priv_key.bin")
        #expect(DefaultPaths.keyFile(environment: ["HOME": "/h"]) == "/h/.local/share/mycelium/priv_key.bin")
    }
}

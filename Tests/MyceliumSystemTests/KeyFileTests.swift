import Foundation
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

    @Test("the default path follows XDG_DATA_HOME, else HOME/.local/share")
    func defaultPath() {
        #expect(DefaultPaths.keyFile(environment: ["XDG_DATA_HOME": "/x", "HOME": "/h"]) == "/x/mycelium/priv_key.bin")
        #expect(DefaultPaths.keyFile(environment: ["HOME": "/h"]) == "/h/.local/share/mycelium/priv_key.bin")
    }
}

// The fuzz entry point (no main.swift: both builds parse it as a library). Built two ways:
// - by scripts/fuzz.sh with `-sanitize=fuzzer -parse-as-library -DFUZZING`: libFuzzer's own
//   main drives `LLVMFuzzerTestOneInput` (coverage-guided, `make fuzz`);
// - in the normal build: a replayer that runs every file (or every file of every directory)
//   named on the command line through the same targets, e.g. a crasher libFuzzer wrote.
import MyceliumFuzz

#if FUZZING
import CFuzzerDriver

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// SwiftPM links an executable's `main` to this symbol; it hands the arguments to libFuzzer.
@_cdecl("mycelium_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}
#else
import Glibc

/// Replays `path` (a file, or every file below a directory); returns how many inputs ran.
func replay(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else {
        print("mycelium-fuzz: cannot read \(path)")
        exit(2)
    }
    if info.st_mode & S_IFMT == S_IFDIR {
        guard let dir = opendir(path) else { return 0 }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted().reduce(0) { $0 + replay(path + "/" + $1) }
    }
    guard let file = fopen(path, "rb") else { return 0 }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[..<n]
    }
    FuzzTarget.run(bytes)
    return 1
}

@main
enum Replayer {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.isEmpty {
            print("usage: mycelium-fuzz FILE|DIR...  (replays inputs through every fuzz target; `make fuzz` fuzzes)")
            exit(2)
        }
        let inputs = arguments.reduce(0) { $0 + replay($1) }
        print("mycelium-fuzz: \(inputs) inputs replayed, none trapped")
    }
}
#endif

#if canImport(Glibc)
import Glibc
#endif
import MyceliumCNI

// The CNI plugin binary: a thin client of the node's agent. It is copied onto hosts we do not
// control, so it links no C library beyond libc and no Foundation (build it with
// --static-swift-stdlib; scripts/build-cni.sh does).

var environment: [String: String] = [:]
var entry = environ
while let pointer = entry.pointee {
    let text = String(cString: pointer)
    if let eq = text.firstIndex(of: "=") { environment[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
    entry += 1
}

var input: [UInt8] = []
if environment["CNI_COMMAND"] != nil {
    var chunk = [UInt8](repeating: 0, count: 65536)
    while input.count < 1 << 24 {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0, errno == EINTR { continue }
        if n <= 0 { break }
        input += chunk[0..<n]
    }
}

let output = Plugin.run(environment: environment, stdin: input) { socket, request throws(CNIError) in
    try AgentClient.send(socket: socket, request: request)
}
/// Writes all of `text` to a file descriptor (stdio's globals are not concurrency-safe).
func writeAll(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0, errno == EINTR { continue }
        if n <= 0 { return }
        done += n
    }
}

writeAll(2, output.stderr)
writeAll(1, output.stdout)
exit(output.status)

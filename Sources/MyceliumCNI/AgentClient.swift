#if canImport(Glibc)
import Glibc
#endif
import MyceliumJSON

/// The plugin's side of the agent socket: connect, send one request line, read the reply to
/// EOF. Plain Glibc, so the plugin binary needs no other library.
public enum AgentClient {
    /// Generous: an ADD may wait behind others (the agent serialises them).
    public static let timeoutSeconds = 60

    public static func send(socket path: String, request: AgentRequest) throws(CNIError) -> AgentReply {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw unavailable(path, "socket", errno) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw CNIError(CNIError.invalidConfig, "'socket' path is too long", details: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw unavailable(path, "connect", errno) }
        let line = Array((request.json.compact + "\n").utf8)
        var sent = 0
        while sent < line.count {
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw unavailable(path, "write", errno) }
            sent += n
        }
        shutdown(fd, Int32(SHUT_WR))
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while reply.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw unavailable(path, "read", errno) }
            if n == 0 { break }
            reply += chunk[0..<n]
        }
        guard !reply.isEmpty else { throw CNIError(CNIError.tryAgainLater, "the mycelium agent closed the connection without a reply") }
        do { return try AgentReply(json: try JSON(parsing: reply)) } catch let error as CNIError { throw error } catch {
            throw CNIError(CNIError.decodeFailure, "the agent's reply is not JSON", details: "\(error)")
        }
    }

    static func unavailable(_ path: String, _ step: String, _ code: Int32) -> CNIError {
        CNIError(CNIError.tryAgainLater, "the mycelium agent is not reachable; is the node running with --cni?",
                 details: "\(step) \(path): \(String(cString: strerror(code)))")
    }
}

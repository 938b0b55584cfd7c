public import Foundation

/// Runs commands for system and integration tests, always with a time limit.
public enum Shell {
    /// Runs `args` through /usr/bin/env; standard error is appended to the output. A command
    /// still running after `timeout` seconds is terminated.
    @discardableResult
    public static func run(_ args: [String], timeout: TimeInterval = 20) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning, Date() < deadline { usleep(10_000) }
        if p.isRunning {
            // SIGKILL: a child of a test process may inherit a mask that blocks SIGTERM.
            kill(p.processIdentifier, SIGKILL)
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CMyceliumShims

/// Runs synchronous code inside another network namespace.
///
/// `setns` changes only the calling thread, and threads inherit the namespace of their creator,
/// so this never touches a Swift concurrency thread: it starts a one-shot pthread that enters the
/// namespace, runs `body`, switches back before finishing, and hands the result over. Sockets and
/// devices created inside stay bound to that namespace and may be used from anywhere afterwards.
public enum NetworkNamespace {
    /// Whether `fd` is a network namespace. A bind mount made in another mount namespace leaves
    /// only the empty file it was mounted on, which the kernel refuses with a bare EINVAL.
    public static func isNetworkNamespace(fd: Int32) -> Bool { cmyc_is_net_namespace(fd) == 1 }

    /// Whether `fd` is the same namespace as the one at `path` (same device and inode).
    public static func isSameNamespace(fd: Int32, as path: String) -> Bool {
        var a = stat(), b = stat()
        guard fstat(fd, &a) == 0, stat(path, &b) == 0 else { return false }
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    /// `path` is a namespace file, e.g. `/var/run/netns/NAME` or `/proc/PID/ns/net`.
    public static func run<T>(_ path: String, _ body: @escaping () throws -> T) throws -> T {
        let job = Job(path: path, body: body)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(job).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<AnyJob>.fromOpaque(raw!).takeRetainedValue()
            job.execute()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<AnyJob>.fromOpaque(context).release()
            throw SystemError("start namespace thread", errno: rc)
        }
        pthread_join(thread, nil)
        return try job.result!.get()
    }

    class AnyJob {
        func execute() {}
    }

    final class Job<T>: AnyJob {
        let path: String
        let body: () throws -> T
        var result: Result<T, any Error>?

        init(path: String, body: @escaping () throws -> T) {
            self.path = path
            self.body = body
        }

        override func execute() {
            let target = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard target >= 0 else {
                result = .failure(SystemError("open namespace \(path)", errno: errno))
                return
            }
            defer { close(target) }
            let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
            guard original >= 0 else {
                result = .failure(SystemError("open own namespace", errno: errno))
                return
            }
            defer { close(original) }
            let entered = cmyc_setns_net(target)
            guard entered == 0 else {
                result = .failure(SystemError("enter namespace \(path)", errno: -entered))
                return
            }
            result = Result { try body() }
            // Back before the thread ends, so nothing created from here on leaks the namespace.
            precondition(cmyc_setns_net(original) == 0, "cannot return to the original network namespace")
        }
    }
}

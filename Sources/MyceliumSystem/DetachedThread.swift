#if canImport(Glibc)
import Glibc
#endif

/// Runs a blocking body on a new detached thread. For calls that may block for ever (glibc's
/// resolver reads a TCP answer without a timeout): the caller waits with its own deadline and
/// bounds how many such threads may be out at once.
public enum DetachedThread {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// False if no thread could be created (the body did not run).
    @discardableResult
    public static func run(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Box(body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var id = pthread_t()
        let rc = pthread_create(&id, &attributes, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        if rc != 0 { box.release() }
        return rc == 0
    }
}

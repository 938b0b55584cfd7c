#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// A failed system or netlink call: what was attempted and why it failed, in one line.
public struct SystemError: Error, Equatable, CustomStringConvertible {
    public let operation: String
    public let reason: String
    /// errno, or the negative libnl error code.
    public let code: Int32

    public init(_ operation: String, errno code: Int32) {
        self.operation = operation
        self.code = code
        self.reason = String(cString: strerror(code))
    }

    /// An error whose kernel reason alone would mislead; `reason` says what to do.
    public init(_ operation: String, reason: String, errno code: Int32) {
        self.operation = operation
        self.code = code
        self.reason = reason
    }

    public init(_ operation: String, netlink code: Int32) {
        self.operation = operation
        self.code = code
        self.reason = String(cString: nl_geterror(code))
    }

    public var description: String { "\(operation): \(reason)" }

    /// libnl's "object exists" (the kernel's EEXIST).
    public var isExists: Bool { code == -NLE_EXIST || code == EEXIST }
    /// libnl's "object not found" (the kernel's ENOENT / ESRCH).
    public var isNotFound: Bool { code == -NLE_OBJ_NOTFOUND || code == ENOENT || code == ESRCH }
}

import CMyceliumShims

/// The system resolver (glibc's, configured by /etc/resolv.conf, which it reads on each call):
/// raw DNS responses for a name and record type. Blocking: call it off the event loops.
public enum DNSResolver {
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// NXDOMAIN: the name does not exist.
        case notFound
        /// The name exists without records of this type.
        case noData
        /// No server answered (timeout, refused, SERVFAIL).
        case tryAgain
        /// A server refused or failed for good (REFUSED, FORMERR, NOTIMP).
        case noRecovery
        /// /etc/resolv.conf could not be used.
        case unusable

        public var description: String {
            switch self {
            case .notFound: "no such name"
            case .noData: "no records of this type"
            case .tryAgain: "no answer from the resolver (timeout or server failure)"
            case .noRecovery: "the resolver refused the query"
            case .unusable: "the system resolver configuration (/etc/resolv.conf) is unusable"
            }
        }
    }

    /// The largest response taken (TCP answers may be this long).
    static let maxResponse = 65_535

    /// `udpOnly`: a truncated answer is returned as it is instead of asked again over TCP
    /// (where glibc waits for the answer with no timeout).
    public static func search(_ name: String, type: UInt16, udpOnly: Bool = false) -> Result<[UInt8], Failure> {
        var buffer = [UInt8](repeating: 0, count: maxResponse)
        var herr: Int32 = 0
        let n = buffer.withUnsafeMutableBufferPointer { b in
            cmyc_dns_search(name, Int32(type), udpOnly ? 1 : 0, b.baseAddress, Int32(b.count), &herr)
        }
        guard n >= 0 else {
            switch herr {
            case 1: return .failure(.notFound)
            case 4: return .failure(.noData)
            case 2: return .failure(.tryAgain)
            case 3: return .failure(.noRecovery)
            default: return .failure(.unusable)
            }
        }
        return .success(Array(buffer.prefix(Int(min(n, Int32(maxResponse))))))
    }
}

import COpenSSL

/// A private network (spec §3.5): every peer connection is TLS 1.3 authenticated only by a
/// pre-shared key, whose identity is the network name. Nodes of different networks cannot
/// complete a handshake, so they never exchange an overlay packet.
public struct PrivateNetwork: Sendable, Equatable {
    public static let nameLengths = 2...64
    public static let keyLength = 32

    public let name: String
    public let key: [UInt8]

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case nameLength(Int)
        case keyLength(Int)

        public var description: String {
            switch self {
            case let .nameLength(n): "the network name is \(n) bytes; it must be 2 to 64 bytes of UTF-8"
            case let .keyLength(n): "the network key is \(n) bytes; it must be 32"
            }
        }
    }

    public init(name: String, key: [UInt8]) throws(Invalid) {
        guard PrivateNetwork.nameLengths.contains(name.utf8.count) else { throw .nameLength(name.utf8.count) }
        guard key.count == PrivateNetwork.keyLength else { throw .keyLength(key.count) }
        self.name = name
        self.key = key
    }
}

/// The OpenSSL context shared by every private-network connection of a node (both roles).
/// `SSL_CTX` may be used from several threads once configured; it is never changed afterwards.
public final class TLSPSKContext: @unchecked Sendable {
    let context: OpaquePointer
    private let psk: UnsafeMutablePointer<cmyc_psk>

    public struct SetupFailed: Error, CustomStringConvertible {
        public let description: String
    }

    public init(network: PrivateNetwork) throws(SetupFailed) {
        psk = .allocate(capacity: 1)
        psk.initialize(to: cmyc_psk())
        withUnsafeMutableBytes(of: &psk.pointee.identity) { $0.copyBytes(from: network.name.utf8) }
        psk.pointee.identity_len = network.name.utf8.count
        withUnsafeMutableBytes(of: &psk.pointee.key) { $0.copyBytes(from: network.key) }
        guard let context = cmyc_psk_context_new(psk) else {
            let reason = TLSPSKContext.openSSLError()
            psk.deallocate()
            throw SetupFailed(description: "cannot set up TLS 1.3 with a pre-shared key: \(reason)")
        }
        self.context = context
    }

    deinit {
        SSL_CTX_free(context)
        withUnsafeMutableBytes(of: &psk.pointee.key) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
        psk.deallocate()
    }

    /// The oldest queued OpenSSL error of this thread as text (and the queue cleared).
    static func openSSLError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "unknown error" }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

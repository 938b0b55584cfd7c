public import MyceliumJSON

/// A CNI error result (spec §1.6): printed on stdout as JSON, with a non-zero exit status.
public struct CNIError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int
    public var msg: String
    public var details: String

    public init(_ code: Int, _ msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    // The spec's codes.
    public static let incompatibleVersion = 1
    public static let unsupportedField = 2
    public static let unknownContainer = 3
    public static let invalidEnvironment = 4
    public static let ioFailure = 5
    public static let decodeFailure = 6
    public static let invalidConfig = 7
    public static let tryAgainLater = 11
    public static let notAvailable = 50
    public static let notAvailableLimited = 51
    // Ours (100 and up are the plugin's own).
    public static let attachmentExists = 100
    public static let wiringFailed = 101
    public static let addressesExhausted = 102
    public static let checkFailed = 103
    public static let internalError = 999

    public var description: String { details.isEmpty ? "CNI error \(code): \(msg)" : "CNI error \(code): \(msg): \(details)" }

    /// The error object; `cniVersion` is included when known.
    public func json(version: String?) -> JSON {
        var members: [(String, JSON)] = []
        if let version { members.append(("cniVersion", .string(version))) }
        members.append(("code", .int(code)))
        members.append(("msg", .string(msg)))
        if !details.isEmpty { members.append(("details", .string(details))) }
        return .object(members)
    }

    public init?(json: JSON) {
        guard let code = json["code"]?.int64, let msg = json["msg"]?.string else { return nil }
        self.init(Int(code), msg, details: json["details"]?.string ?? "")
    }
}

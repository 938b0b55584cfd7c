public import Foundation

/// A parsed JSON document, `Sendable` and easy to walk in tests: `v["fields"]["seqno"].int`.
/// Missing keys and wrong types read as `.null` rather than crashing, so a test fails on its
/// own assertion with a readable message.
public enum JSONValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(data: Data) throws {
        self = JSONValue(any: try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]))
    }

    init(any: Any) {
        switch any {
        case let n as NSNumber:
            // JSONSerialization gives booleans as NSNumber too; their ObjC type is "c" (char).
            if String(cString: n.objCType) == "c" { self = .bool(n.boolValue) } else { self = .number(n.doubleValue) }
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(JSONValue.init(any:)))
        case let o as [String: Any]: self = .object(o.mapValues(JSONValue.init(any:)))
        default: self = .null
        }
    }

    public subscript(key: String) -> JSONValue {
        if case let .object(o) = self { return o[key] ?? .null }
        return .null
    }

    public subscript(index: Int) -> JSONValue {
        if case let .array(a) = self, a.indices.contains(index) { return a[index] }
        return .null
    }

    public var string: String? { if case let .string(s) = self { return s }; return nil }
    public var int: Int? { if case let .number(n) = self { return Int(exactly: n) }; return nil }
    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var array: [JSONValue] { if case let .array(a) = self { return a }; return [] }
    public var object: [String: JSONValue] { if case let .object(o) = self { return o }; return [:] }
    public var isNull: Bool { self == .null }

    /// Hex string fields decoded to bytes.
    public var hexBytes: [UInt8]? {
        guard let s = string, s.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        var index = s.startIndex
        while index < s.endIndex {
            let next = s.index(index, offsetBy: 2)
            guard let b = UInt8(s[index..<next], radix: 16) else { return nil }
            out.append(b)
            index = next
        }
        return out
    }

    public var description: String {
        switch self {
        case .null: "null"
        case let .bool(b): String(b)
        case let .number(n): String(n)
        case let .string(s): "\"\(s)\""
        case let .array(a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case let .object(o): "{" + o.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

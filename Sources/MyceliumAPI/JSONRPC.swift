public import MyceliumJSON

/// JSON-RPC 2.0 (https://www.jsonrpc.org/specification) as jsonrpsee answers it for Rust
/// Mycelium (spec §10): single calls and batches, positional or named params, notifications
/// answered with nothing, errors as `{"code", "message"}` with jsonrpsee's messages. Transport-
/// free: a body in, a body (or nothing) out.
public enum JSONRPC {
    public struct Failure: Error, Equatable, Sendable {
        public let code: Int
        public let message: String
        /// Our explanation (jsonrpsee sends none for Rust's codes; a client may ignore it).
        public let data: String?

        public init(code: Int, data: String? = nil) {
            self.code = code
            self.message = Self.message(for: code)
            self.data = data
        }

        public static func parse(_ why: String) -> Failure { Failure(code: -32700, data: why) }
        public static func invalidRequest(_ why: String) -> Failure { Failure(code: -32600, data: why) }
        public static func methodNotFound(_ name: String) -> Failure { Failure(code: -32601, data: "no method '\(name)'") }
        public static func invalidParams(_ why: String) -> Failure { Failure(code: -32602, data: why) }
        public static func internalError(_ why: String) -> Failure { Failure(code: -32603, data: why) }

        /// jsonrpsee's `ErrorCode::message`.
        static func message(for code: Int) -> String {
            switch code {
            case -32700: "Parse error"
            case -32600: "Invalid request"
            case -32601: "Method not found"
            case -32602: "Invalid params"
            case -32603: "Internal error"
            default: "Server error"
            }
        }

        var json: JSON {
            var members: [(String, JSON)] = [("code", .int(code)), ("message", .string(message))]
            if let data { members.append(("data", .string(data))) }
            return .object(members)
        }
    }

    /// A call's params by position, or by name (`names` gives each position's name).
    public struct Params: Sendable {
        let positional: [JSON]?
        let named: [(String, JSON)]?

        init(_ value: JSON?) throws(Failure) {
            switch value {
            case nil, .null?: positional = []; named = nil
            case let .array(items)?: positional = items; named = nil
            case let .object(members)?: positional = nil; named = members
            default: throw .invalidRequest("params must be an array or an object")
            }
        }

        /// The parameter at `index` (named `name`), nil when absent or null.
        public func optional(_ index: Int, _ name: String) -> JSON? {
            let value: JSON?
            if let positional { value = index < positional.count ? positional[index] : nil } else {
                value = named?.first { $0.0 == name }?.1
            }
            if case .null? = value { return nil }
            return value
        }

        public func required(_ index: Int, _ name: String) throws(Failure) -> JSON {
            guard let value = optional(index, name) else { throw .invalidParams("missing parameter \(index) (\(name))") }
            return value
        }

        public func string(_ index: Int, _ name: String) throws(Failure) -> String {
            guard let s = try required(index, name).string else { throw .invalidParams("parameter \(name) must be a string") }
            return s
        }

        public func optionalString(_ index: Int, _ name: String) throws(Failure) -> String? {
            guard let v = optional(index, name) else { return nil }
            guard let s = v.string else { throw .invalidParams("parameter \(name) must be a string") }
            return s
        }

        public func optionalUInt(_ index: Int, _ name: String) throws(Failure) -> UInt64? {
            guard let v = optional(index, name) else { return nil }
            guard let n = v.uint64 else { throw .invalidParams("parameter \(name) must be a non-negative integer") }
            return n
        }

        public func optionalBool(_ index: Int, _ name: String) throws(Failure) -> Bool? {
            guard let v = optional(index, name) else { return nil }
            guard let b = v.bool else { throw .invalidParams("parameter \(name) must be true or false") }
            return b
        }

        /// More positional params than the method takes is an error, as in jsonrpsee.
        public func atMost(_ count: Int) throws(Failure) {
            if let positional, positional.count > count { throw .invalidParams("at most \(count) parameters") }
        }
    }

    public typealias Handler = @Sendable (_ method: String, _ params: Params) async throws(Failure) -> JSON

    /// Most calls in one batch (more: the whole batch is refused).
    public static let maxBatch = 128

    /// Answers one HTTP body: the response body, or nil when there is nothing to answer
    /// (notifications only).
    public static func respond(to body: some Collection<UInt8>, handler: @escaping Handler) async -> String? {
        let document: JSON
        do { document = try JSON(parsing: body) } catch {
            return response(id: .null, result: .failure(.parse("\(error)"))).compact
        }
        switch document {
        case let .array(calls):
            guard !calls.isEmpty else { return response(id: .null, result: .failure(.invalidRequest("empty batch"))).compact }
            guard calls.count <= maxBatch else {
                return response(id: .null, result: .failure(.invalidRequest("at most \(maxBatch) calls per batch"))).compact
            }
            let answers = await withTaskGroup(of: (Int, JSON?).self) { group in
                for (i, call) in calls.enumerated() {
                    group.addTask { (i, await answer(call, handler: handler)) }
                }
                var out = [JSON?](repeating: nil, count: calls.count)
                for await (i, a) in group { out[i] = a }
                return out
            }
            let present = answers.compactMap { $0 }
            return present.isEmpty ? nil : JSON.array(present).compact
        default:
            return await answer(document, handler: handler)?.compact
        }
    }

    /// One call's response object; nil for a notification.
    static func answer(_ call: JSON, handler: @escaping Handler) async -> JSON? {
        guard case let .object(members) = call else {
            return response(id: .null, result: .failure(.invalidRequest("a call must be an object")))
        }
        let idValue = members.first { $0.0 == "id" }?.1
        let id = idValue ?? .null
        switch id {
        case .null, .string, .number: break
        default: return response(id: .null, result: .failure(.invalidRequest("id must be a string, a number or null")))
        }
        guard call["jsonrpc"]?.string == "2.0" else {
            return response(id: id, result: .failure(.invalidRequest("jsonrpc must be \"2.0\"")))
        }
        guard let method = call["method"]?.string else {
            return response(id: id, result: .failure(.invalidRequest("method must be a string")))
        }
        let result: Result<JSON, Failure>
        do {
            let params = try Params(call["params"])
            result = .success(try await handler(method, params))
        } catch {
            result = .failure(error)
        }
        guard idValue != nil else { return nil }  // a notification: done, nothing said
        return response(id: id, result: result)
    }

    static func response(id: JSON, result: Result<JSON, Failure>) -> JSON {
        switch result {
        case let .success(value): .object([("jsonrpc", .string("2.0")), ("result", value), ("id", id)])
        case let .failure(failure): .object([("jsonrpc", .string("2.0")), ("error", failure.json), ("id", id)])
        }
    }
}

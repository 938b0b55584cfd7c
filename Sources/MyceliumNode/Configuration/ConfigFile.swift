/// The config file (`-c`): the flat TOML subset Rust Mycelium's `mycelium.toml` uses.
///
/// Why not a TOML library: the one on our package mirror (TOMLKit) depends on a package the
/// mirror does not carry, so it cannot resolve. The file format Mycelium needs is small:
/// `key = value` lines with strings (basic and literal), integers (decimal, hex, `_`),
/// booleans and arrays of those, `#` comments, multi-line arrays. Tables are rejected with a
/// clear error rather than misread, except where a file needs them (`allowTables`, the topic
/// file): `[name]` sections and `{ key = value, … }` inline tables, one level deep.
public enum ConfigFile {
    public enum Value: Hashable, Sendable {
        case string(String)
        case integer(Int64)
        case boolean(Bool)
        case array([Value])
        case table([String: Value])
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String, allowTables: Bool = false) throws(ParseError) -> [String: Value] {
        var parser = Parser(Array(text.unicodeScalars), allowTables: allowTables)
        return try parser.document()
    }

    struct Parser {
        let s: [Unicode.Scalar]
        let allowTables: Bool
        var i = 0
        var line = 1

        init(_ s: [Unicode.Scalar], allowTables: Bool) {
            self.s = s
            self.allowTables = allowTables
        }

        func fail(_ message: String) -> ParseError { ParseError(line: line, message: message) }

        var atEnd: Bool { i >= s.count }
        var peek: Unicode.Scalar? { atEnd ? nil : s[i] }

        mutating func advance() {
            if s[i] == "\n" { line += 1 }
            i += 1
        }

        /// Spaces and tabs; with `newlines`, also line breaks and comments.
        mutating func skipBlank(newlines: Bool) {
            while let c = peek {
                if c == " " || c == "\t" || c == "\r" {
                    advance()
                } else if newlines, c == "\n" {
                    advance()
                } else if newlines, c == "#" {
                    while let d = peek, d != "\n" { advance() }
                } else {
                    return
                }
            }
        }

        mutating func document() throws(ParseError) -> [String: Value] {
            var result: [String: Value] = [:]
            /// The `[section]` being filled, and its keys so far.
            var section: (name: String, values: [String: Value])?
            func close(_ section: (name: String, values: [String: Value])?, into result: inout [String: Value]) {
                if let section { result[section.name] = .table(section.values) }
            }
            while true {
                skipBlank(newlines: true)
                guard let c = peek else {
                    close(section, into: &result)
                    return result
                }
                if c == "[" {
                    guard allowTables else { throw fail("tables ([section]) are not supported in the config file") }
                    let headerLine = line
                    advance()
                    skipBlank(newlines: false)
                    let name = try key()
                    skipBlank(newlines: false)
                    guard peek == "]" else { throw fail("expected ']' after the table name '\(name)'") }
                    advance()
                    try endOfLine(after: "[\(name)]")
                    close(section, into: &result)
                    guard result[name] == nil else { throw ParseError(line: headerLine, message: "key '\(name)' appears twice") }
                    section = (name, [:])
                    continue
                }
                let keyLine = line
                let (key, value) = try keyValue()
                if section != nil {
                    guard section!.values[key] == nil else { throw ParseError(line: keyLine, message: "key '\(key)' appears twice") }
                    section!.values[key] = value
                } else {
                    guard result[key] == nil else { throw ParseError(line: keyLine, message: "key '\(key)' appears twice") }
                    result[key] = value
                }
                try endOfLine(after: "the value of '\(key)'")
            }
        }

        mutating func keyValue() throws(ParseError) -> (String, Value) {
            let key = try self.key()
            skipBlank(newlines: false)
            guard peek == "=" else { throw fail("expected '=' after key '\(key)'") }
            advance()
            skipBlank(newlines: false)
            return (key, try value())
        }

        mutating func endOfLine(after what: String) throws(ParseError) {
            skipBlank(newlines: false)
            if peek == "#" { while let d = peek, d != "\n" { advance() } }
            guard atEnd || peek == "\n" else { throw fail("unexpected text after \(what)") }
        }

        /// `{ key = value, … }` on one line.
        mutating func inlineTable() throws(ParseError) -> Value {
            advance()
            var values: [String: Value] = [:]
            skipBlank(newlines: false)
            if peek == "}" { advance(); return .table(values) }
            while true {
                skipBlank(newlines: false)
                let keyLine = line
                let (key, value) = try keyValue()
                guard values[key] == nil else { throw ParseError(line: keyLine, message: "key '\(key)' appears twice") }
                values[key] = value
                skipBlank(newlines: false)
                if peek == "," { advance(); continue }
                if peek == "}" { advance(); return .table(values) }
                throw fail("expected ',' or '}' in inline table")
            }
        }

        mutating func key() throws(ParseError) -> String {
            if peek == "\"" || peek == "'" {
                guard case let .string(k) = try value() else { throw fail("bad key") }
                return k
            }
            var k = ""
            while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
                k.unicodeScalars.append(c)
                advance()
            }
            guard !k.isEmpty else { throw fail("expected a key") }
            if peek == "." { throw fail("dotted keys are not supported in the config file") }
            return k
        }

        mutating func value() throws(ParseError) -> Value {
            guard let c = peek else { throw fail("expected a value") }
            switch c {
            case "\"": return .string(try basicString())
            case "'": return .string(try literalString())
            case "[": return try array()
            case "{" where allowTables: return try inlineTable()
            default: return try bareValue()
            }
        }

        mutating func basicString() throws(ParseError) -> String {
            let start = line
            advance()
            var out = ""
            while let c = peek {
                advance()
                switch c {
                case "\"": return out
                case "\n": throw ParseError(line: start, message: "unterminated string")
                case "\\":
                    guard let e = peek else { throw fail("unterminated string") }
                    advance()
                    switch e {
                    case "\"": out += "\""
                    case "\\": out += "\\"
                    case "n": out += "\n"
                    case "t": out += "\t"
                    case "r": out += "\r"
                    case "u", "U":
                        let n = e == "u" ? 4 : 8
                        var hex = ""
                        for _ in 0..<n {
                            guard let h = peek else { throw fail("bad \\\(e) escape") }
                            hex.unicodeScalars.append(h)
                            advance()
                        }
                        guard let v = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(v) else { throw fail("bad \\\(e) escape") }
                        out.unicodeScalars.append(scalar)
                    default: throw fail("unknown escape \\\(e)")
                    }
                default:
                    out.unicodeScalars.append(c)
                }
            }
            throw fail("unterminated string")
        }

        mutating func literalString() throws(ParseError) -> String {
            let start = line
            advance()
            var out = ""
            while let c = peek {
                advance()
                if c == "'" { return out }
                if c == "\n" { break }
                out.unicodeScalars.append(c)
            }
            throw ParseError(line: start, message: "unterminated string")
        }

        mutating func array() throws(ParseError) -> Value {
            advance()
            var items: [Value] = []
            while true {
                skipBlank(newlines: true)
                if peek == "]" { advance(); return .array(items) }
                items.append(try value())
                skipBlank(newlines: true)
                if peek == "," { advance(); continue }
                if peek == "]" { advance(); return .array(items) }
                throw fail("expected ',' or ']' in array")
            }
        }

        mutating func bareValue() throws(ParseError) -> Value {
            var text = ""
            while let c = peek, c != ",", c != "]", c != "}", c != "\n", c != "#", c != " ", c != "\t", c != "\r" {
                text.unicodeScalars.append(c)
                advance()
            }
            switch text {
            case "true": return .boolean(true)
            case "false": return .boolean(false)
            default:
                let digits = text.replacingUnderscores()
                if digits.hasPrefix("0x"), let v = Int64(digits.dropFirst(2), radix: 16) { return .integer(v) }
                if let v = Int64(digits) { return .integer(v) }
                throw fail(text.isEmpty ? "expected a value" : "'\(text)' is not a string, integer, boolean or array")
            }
        }
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(unicodeScalars.filter { $0 != "_" }) }
}

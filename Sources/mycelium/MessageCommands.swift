import ArgumentParser
import MyceliumAPI
import MyceliumCore
import MyceliumSystem
#if canImport(Glibc)
import Glibc
#endif

/// `mycelium message send|receive`: the message bus through the running daemon's API, with
/// Rust's options and output (one JSON line; payload and topic as text when they are UTF-8,
/// base64 otherwise).
struct Message: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send and receive messages over the overlay (the message bus, docs/messages.md).",
        subcommands: [Send.self, Receive.self]
    )

    /// The largest message the daemon accepts.
    static let maxMessage = 8 << 20

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a message to a node (its public key or overlay address).",
            discussion: """
                The message is the argument, else the file given with --msg-path, else standard input. \
                Prints {"id":"…"}; with --wait, the reply instead (or {"id":"…"} and exit status 3 if none came).
                """)
        @OptionGroup var api: APIOptions
        @Flag(name: [.short, .long], help: "Wait for a reply from the receiver.") var wait = false
        @Option(help: "Seconds to wait for the reply with --wait (default: a day).") var timeout: UInt64?
        @Option(name: [.short, .long], help: "Topic of the message (at most 255 bytes).") var topic: String?
        @Option(help: "File whose content is the message.") var msgPath: String?
        @Option(help: "Send as the reply to this message id (16 hex digits).") var replyTo: String?
        @Argument(help: "Destination: a hex public key, or an IPv6 address in 400::/7.") var destination: String
        @Argument(help: "The message (else --msg-path, else standard input).") var message: String?

        func validate() throws {
            if let topic, topic.utf8.count > 255 { throw ValidationError("--topic is \(topic.utf8.count) bytes; at most 255") }
            if message != nil, msgPath != nil { throw ValidationError("give the message as an argument or --msg-path, not both") }
            if let replyTo, replyTo.utf8.count != 16 || Hex.decode(replyTo) == nil {
                throw ValidationError("--reply-to must be a message id of 16 hex digits")
            }
            if replyTo != nil, wait { throw ValidationError("--wait cannot be used with --reply-to (replies get no reply)") }
        }

        func run() async throws {
            let dst: JSON
            if let key = PublicKey(hex: destination) {
                dst = .object([("pk", .string(key.hex))])
            } else if let ip = IPv6Address(destination), Subnet.overlay.contains(ip) {
                dst = .object([("ip", .string(ip.description))])
            } else {
                throw CLIError("destination '\(destination)' is neither a hex public key nor an IPv6 address in 400::/7")
            }
            let payload: [UInt8]
            if let message {
                payload = Array(message.utf8)
            } else if let msgPath {
                do { payload = try TextFile.readBytes(msgPath, limit: Message.maxMessage) } catch { throw CLIError("--msg-path: \(error)") }
            } else {
                do { payload = try TextFile.readStandardInput(limit: Message.maxMessage) } catch { throw CLIError("\(error)") }
            }
            var members: [(String, JSON)] = [("dst", dst)]
            if let topic { members.append(("topic", .string(Base64.encode(Array(topic.utf8))))) }
            members.append(("payload", .string(Base64.encode(payload))))
            let body = JSON.object(members).compact

            if let replyTo {
                _ = try await api.call(.POST, "/api/v1/messages/reply/\(replyTo.lowercased())", body: body)
                return
            }
            var path = "/api/v1/messages"
            var client = try api.client()
            if wait {
                let seconds = min(timeout ?? 86_400, 86_400)
                path += "?reply_timeout=\(seconds)"
                client.timeoutSeconds = Int64(seconds) + 10
            }
            let response = try await APIOptions.send(client, .POST, path, body: body, accept: [408])
            let document = try JSON(parsing: response.body)
            if response.status == 200 {
                print(api.json ? document.compact : Message.cliMessage(document).compact)
            } else {
                print(document.compact)
            }
            if response.status == 408 { throw ExitCode(3) }
        }
    }

    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait for a message and print it (one JSON line), or its payload alone with --raw.",
            discussion: "Exit status 3 when no message came within --timeout.")
        @OptionGroup var api: APIOptions
        @Option(help: "Seconds to wait for a message (default: until one comes).") var timeout: UInt64?
        @Option(name: [.short, .long], help: "Only receive messages on this topic.") var topic: String?
        @Option(help: "Write the payload to this file.") var msgPath: String?
        @Flag(help: "Print the payload only, not the metadata.") var raw = false

        func validate() throws {
            if let topic, topic.utf8.count > 255 { throw ValidationError("--topic is \(topic.utf8.count) bytes; at most 255") }
        }

        func run() async throws {
            var client = try api.client()
            var left = timeout
            while true {
                let seconds = min(left ?? 86_400, 86_400)
                var path = "/api/v1/messages?timeout=\(seconds)"
                if let topic { path += "&topic=" + CLIRender.percentEncoded(Base64.encode(Array(topic.utf8))) }
                client.timeoutSeconds = Int64(seconds) + 10
                let response = try await APIOptions.send(client, .GET, path, body: nil, accept: [])
                if response.status == 204 {
                    if let l = left {
                        left = l - seconds
                        if left == 0 { throw ExitCode(3) }
                    }
                    continue
                }
                let document = try JSON(parsing: response.body)
                let payload = document["payload"]?.string.flatMap { Base64.decode($0) } ?? []
                if let msgPath {
                    do { try TextFile.writeAtomically(msgPath, payload) } catch { throw CLIError("--msg-path: \(error)") }
                }
                if raw {
                    if msgPath == nil {
                        // The payload's bytes as they are (print would need text).
                        var out = payload
                        out.append(UInt8(ascii: "\n"))
                        var written = 0
                        while written < out.count {
                            let n = out[written...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                            if n < 0, errno == EINTR { continue }
                            guard n > 0 else { throw CLIError("cannot write to standard output") }
                            written += n
                        }
                    }
                } else if api.json {
                    print(document.compact)
                } else {
                    var shown = Message.cliMessage(document)
                    if msgPath != nil, case let .object(members) = shown { shown = .object(members.filter { $0.0 != "payload" }) }
                    print(shown.compact)
                }
                return
            }
        }
    }

    /// Rust's CLI form of a received message: topic and payload as text when UTF-8.
    static func cliMessage(_ document: JSON) -> JSON {
        guard case let .object(members) = document else { return document }
        return .object(members.map { key, value in
            guard key == "topic" || key == "payload", let text = value.string, let bytes = Base64.decode(text),
                  let readable = String(validating: bytes, as: UTF8.self) else { return (key, value) }
            return (key, .string(readable))
        })
    }
}

extension APIOptions {
    /// One request on `client`; a status outside 2xx and `accept` becomes an error with the
    /// daemon's own message.
    static func send(_ client: APIClient, _ method: APIClient.Method, _ path: String, body: String?,
                     accept: Set<Int>) async throws -> APIClient.Response {
        let response: APIClient.Response
        do { response = try await client.request(method, path, json: body) } catch let error as APIClient.Unreachable {
            throw CLIError(error.description)
        }
        guard (200..<300).contains(response.status) || accept.contains(response.status) else {
            let message = response.text.isEmpty ? "no details" : response.text
            throw CLIError("\(message) (HTTP \(response.status))")
        }
        return response
    }
}

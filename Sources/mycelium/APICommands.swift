import ArgumentParser
import MyceliumAPI

/// `--api-addr` for the commands that talk to a running daemon.
struct APIOptions: ParsableArguments {
    @Option(name: .long, help: "Address of the daemon's REST API (env MYCELIUM_API_ADDR; default 127.0.0.1:8989).")
    var apiAddr: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    func client() throws -> APIClient { try Self.client(apiAddr: apiAddr) }

    static func client(apiAddr: String?) throws -> APIClient {
        let text = apiAddr ?? Environment.current["MYCELIUM_API_ADDR"] ?? APIAddress.defaultAPI.description
        guard let address = APIAddress(text) else {
            throw CLIError("invalid value for --api-addr (MYCELIUM_API_ADDR): '\(text)' is not IP:PORT, e.g. 127.0.0.1:8989")
        }
        return APIClient(address: address)
    }

    /// GETs `path` and returns its JSON, or prints it pretty and returns nil with `--json`.
    func fetch(_ path: String) async throws -> JSON? {
        let response = try await call(.GET, path)
        let document: JSON
        do { document = try JSON(parsing: response.body) } catch {
            throw CLIError("the API answered \(path) with something that is not JSON: \(error)")
        }
        if json {
            print(document.pretty)
            return nil
        }
        return document
    }

    /// One request; a non-2xx answer becomes an error with the daemon's own message.
    func call(_ method: APIClient.Method, _ path: String, body: String? = nil) async throws -> APIClient.Response {
        let response: APIClient.Response
        do { response = try await client().request(method, path, json: body) } catch let error as APIClient.Unreachable {
            throw CLIError(error.description)
        }
        guard (200..<300).contains(response.status) else {
            let message = response.text.isEmpty ? "no details" : response.text
            throw CLIError("\(message) (HTTP \(response.status))")
        }
        return response
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: peers

struct Peers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove the peers of the running node.",
        subcommands: [List.self, Add.self, Remove.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List peers with their state and traffic.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            if let peers = try await api.fetch("/api/v1/admin/peers") { print(CLIRender.peers(peers)) }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add peers, e.g. tcp://1.2.3.4:9651; they are dialled at once.")
        @OptionGroup var api: APIOptions
        @Argument(help: "Peer endpoints.") var endpoints: [String]

        func validate() throws {
            if endpoints.isEmpty { throw ValidationError("give at least one endpoint, e.g. tcp://1.2.3.4:9651") }
        }

        func run() async throws {
            for endpoint in endpoints {
                let body = JSON.object([("endpoint", .string(endpoint))]).compact
                _ = try await api.call(.POST, "/api/v1/admin/peers", body: body)
                print("added \(endpoint)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove peers (configured ones are no longer dialled).")
        @OptionGroup var api: APIOptions
        @Argument(help: "Peer endpoints, as `peers list` shows them.") var endpoints: [String]

        func validate() throws {
            if endpoints.isEmpty { throw ValidationError("give at least one endpoint, e.g. tcp://1.2.3.4:9651") }
        }

        func run() async throws {
            for endpoint in endpoints {
                _ = try await api.call(.DELETE, "/api/v1/admin/peers/" + CLIRender.percentEncoded(endpoint))
                print("removed \(endpoint)")
            }
        }
    }
}

// MARK: routes

struct Routes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the routing table of the running node.",
        subcommands: [Selected.self, Fallback.self, Queried.self]
    )

    struct Selected: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The route in use for every known subnet.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            if let routes = try await api.fetch("/api/v1/admin/routes/selected") { print(CLIRender.routes(routes)) }
        }
    }

    struct Fallback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Known routes that are not selected.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            if let routes = try await api.fetch("/api/v1/admin/routes/fallback") { print(CLIRender.routes(routes)) }
        }
    }

    struct Queried: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Subnets the node is looking for a route to.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            if let queried = try await api.fetch("/api/v1/admin/routes/queried") { print(CLIRender.queried(queried)) }
        }
    }
}

// MARK: sessions

struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sessions with forward secrecy of the running node (docs/sessions.md).",
        subcommands: [List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Peers with session state: up, handshaking, answered, fallback (a peer that never answered, e.g. Rust) or idle.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            if let sessions = try await api.fetch("/api/v1/admin/sessions") { print(CLIRender.sessions(sessions)) }
        }
    }
}

// MARK: stats

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Traffic statistics of the running node.",
        subcommands: [Packets.self]
    )

    struct Packets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Data packets routed, by source and by destination address.")
        @OptionGroup var api: APIOptions
        func run() async throws {
            if let stats = try await api.fetch("/api/v1/admin/stats/packets") { print(CLIRender.packetStats(stats)) }
        }
    }
}


// MARK: healthcheck

/// The container's HEALTHCHECK: asks the running node's `/readyz` (or `/healthz` with
/// `--live`), prints the report and exits 0 only on HTTP 200, so the image needs no curl.
struct HealthCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 if the running node is ready (GET /readyz), 1 otherwise; --live asks /healthz."
    )

    @Option(name: .long, help: "Address of the daemon's REST API (env MYCELIUM_API_ADDR; default 127.0.0.1:8989).")
    var apiAddr: String?

    @Flag(help: "Ask /healthz (the process is alive) instead of /readyz (the node carries traffic).")
    var live = false

    func run() async throws {
        var client = try APIOptions.client(apiAddr: apiAddr)
        client.timeoutSeconds = 3
        let path = live ? "/healthz" : "/readyz"
        let response: APIClient.Response
        do { response = try await client.get(path) } catch let error as APIClient.Unreachable {
            throw CLIError(error.description)
        }
        print(response.text)
        guard response.status == 200 else { throw ExitCode.failure }
    }
}

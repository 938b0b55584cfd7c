import ArgumentParser
import MyceliumAPI

/// `mycelium proxy …`: the SOCKS5 helper of the running daemon (spec §13), as Rust's CLI.
struct Proxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find SOCKS5 proxies on the overlay and relay local port 1080 to one.",
        subcommands: [List.self, Connect.self, Disconnect.self, Probe.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open SOCKS5 proxies found by probing.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            guard let proxies = try await api.fetch("/api/v1/admin/proxy") else { return }
            print("IPv6 Address")
            for p in proxies.array ?? [] { print(p.string ?? "") }
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Relay [::]:1080 to a proxy: the one given, else the first known open proxy that answers.")
        @OptionGroup var api: APIOptions
        @Option(help: "The proxy, [IPv6]:PORT, e.g. [407:8d2::1]:1080.") var remote: String?

        func validate() throws {
            if let remote, APIAddress(remote) == nil { throw ValidationError("--remote must be [IPv6]:PORT, e.g. [407:8d2::1]:1080") }
        }

        func run() async throws {
            let body = JSON.object([("remote", remote.map(JSON.string) ?? .null)]).compact
            let response = try await api.call(.POST, "/api/v1/admin/proxy", body: body)
            if api.json {
                print(response.text)
            } else {
                print((try? JSON(parsing: response.body))?.string ?? response.text)
            }
        }
    }

    struct Disconnect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop relaying to the proxy.")
        @OptionGroup var api: APIOptions

        func run() async throws {
            _ = try await api.call(.DELETE, "/api/v1/admin/proxy")
        }
    }

    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start or stop probing for proxies (every 60 s).",
                                                        subcommands: [Start.self, Stop.self])

        struct Start: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            func run() async throws { _ = try await api.call(.GET, "/api/v1/admin/proxy/probe") }
        }

        struct Stop: AsyncParsableCommand {
            @OptionGroup var api: APIOptions
            func run() async throws { _ = try await api.call(.DELETE, "/api/v1/admin/proxy/probe") }
        }
    }
}

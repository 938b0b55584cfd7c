import ArgumentParser
import MyceliumSystem

@main
struct Mycelium: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "mycelium",
        abstract: "A Mycelium overlay node and container network agent.",
        discussion: """
            Wire-compatible with the Rust Mycelium network (v0.7.10). Running the node itself \
            is not available yet in this build; the key commands below are.
            """,
        version: version,
        subcommands: [Inspect.self, GenerateKeys.self]
    )
}

/// `-k/--key-file`, shared by every command that touches the node key.
struct KeyFileOptions: ParsableArguments {
    @Option(name: [.customShort("k"), .long], help: ArgumentHelp(
        "Path to the private key file.",
        discussion: "Default: $XDG_DATA_HOME/mycelium/priv_key.bin, else ~/.local/share/mycelium/priv_key.bin."))
    var keyFile: String?

    func resolvedPath(environment: [String: String] = Environment.current) -> String {
        keyFile ?? DefaultPaths.keyFile(environment: environment)
    }
}

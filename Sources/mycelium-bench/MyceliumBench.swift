import ArgumentParser

/// In-process micro-benchmarks of pure parts of the node (the network benchmarks are the
/// scripts in bench/). Numbers depend on the machine: compare runs on the same one.
@main
struct MyceliumBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mycelium-bench",
        abstract: "In-process micro-benchmarks (no network; build with -c release).",
        subcommands: [SessionsBench.self])
}

import ArgumentParser
import MyceliumCrypto
import MyceliumSystem

struct GenerateKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-keys",
        abstract: "Create a new node key file.",
        discussion: "An existing key file is kept unless --force is given; a forced replacement is atomic."
    )

    @OptionGroup var key: KeyFileOptions

    @Flag(help: "Replace an existing key file (the node gets a new address).")
    var force = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let path = key.resolvedPath()
        let secret = SecretKey.generate()
        try KeyFile.write(secret, to: path, replace: force)
        if !json { print("Wrote a new key to \(path)") }
        print(KeyReport(publicKey: secret.publicKey).render(json: json))
    }
}

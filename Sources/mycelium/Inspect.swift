import ArgumentParser
import MyceliumAPI
import MyceliumCore
import MyceliumCrypto
import MyceliumSystem

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the public key, overlay address and /64 of a key.",
        discussion: "Without PUBKEY the node's key file is read (it is never created here)."
    )

    @OptionGroup var key: KeyFileOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Argument(help: "A public key as 64 hex characters.")
    var publicKey: String?

    func run() throws {
        let pk: PublicKey
        if let text = publicKey {
            guard let parsed = PublicKey(hex: text) else {
                throw ValidationError("PUBKEY must be 64 hex characters, got '\(text)'")
            }
            pk = parsed
        } else {
            pk = try KeyFile.load(path: key.resolvedPath()).publicKey
        }
        print(KeyReport(publicKey: pk).render(json: json))
    }
}

/// What `inspect` and `generate-keys` print, in Rust Mycelium's format.
struct KeyReport {
    let publicKey: PublicKey

    func render(json: Bool) -> String {
        let address = publicKey.overlayAddress
        if json {
            // serde_json's pretty form, with "subnet" added after the Rust fields.
            return """
                {
                  "publicKey": \(JSON.quoted(publicKey.hex)),
                  "address": \(JSON.quoted(address.description)),
                  "subnet": \(JSON.quoted(publicKey.subnet.description))
                }
                """
        }
        return """
            Public key: \(publicKey.hex)
            Address: \(address)
            Subnet: \(publicKey.subnet)
            """
    }
}

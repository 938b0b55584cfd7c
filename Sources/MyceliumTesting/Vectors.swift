public import Foundation

/// The protocol vectors in `Tests/Fixtures`, copied from the shared reference material.
///
/// Tests look vectors up by id or prefix, and every test that consumes one records it, so a
/// coverage test can prove no vector in the file goes unchecked.
public enum Vectors {
    /// `Tests/Fixtures`, found relative to this source file so no bundle resources are needed.
    public static let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures")

    public static func load(_ name: String) -> JSONValue {
        let url = fixturesDirectory.appendingPathComponent(name)
        do {
            return try JSONValue(data: Data(contentsOf: url))
        } catch {
            fatalError("cannot load fixture \(url.path): \(error)")
        }
    }

    /// `mycelium.json`: every vector, in file order.
    public static let mycelium: [JSONValue] = load("mycelium.json")["vectors"].array

    /// `blake3.json`: the official BLAKE3 vectors.
    public static let blake3: JSONValue = load("blake3.json")

    public static func vector(_ id: String) -> JSONValue {
        guard let v = mycelium.first(where: { $0["id"].string == id }) else { fatalError("no vector \(id)") }
        return v
    }

    public static func vectors(prefix: String) -> [JSONValue] {
        mycelium.filter { $0["id"].string?.hasPrefix(prefix) == true }
    }

    public static var allIds: [String] { mycelium.compactMap { $0["id"].string } }
}

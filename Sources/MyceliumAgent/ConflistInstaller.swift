public import MyceliumCNI
import MyceliumJSON
import MyceliumSystem

/// Where and how the agent writes the CNI conflist once its socket answers (`--cni-conflist`),
/// so a runtime never calls the plugin before the agent can serve it. The file is left in place
/// on shutdown: a restarting agent must not make the runtime fail every pod meanwhile (the
/// plugin's requests wait for the socket).
public struct ConflistSettings: Sendable, Equatable {
    /// Absolute path of the conflist, e.g. /etc/cni/net.d/10-mycelium.conflist.
    public var path: String
    public var mode: CNIConflist.Mode = .primary
    /// `overlay` (400::/7) or `default` (::/0).
    public var route = "overlay"
    public var mtu = 1400

    public init(path: String) { self.path = path }

    var directory: String { path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "." }
    var name: String { path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path }
}

/// One attempt at writing the conflist.
enum ConflistAttempt: Equatable {
    case written(String)
    /// Already there with this content.
    case unchanged
    /// Chained mode: the other network's conflist is not there (yet), or not usable yet.
    case waiting(String)
    /// A configuration that can never work (a chain that would not sort first).
    case impossible(String)
    /// The file could not be written.
    case failed(String)
}

enum ConflistInstaller {
    static func attempt(_ settings: ConflistSettings, socket: String) -> ConflistAttempt {
        let conflist: JSON
        var note = ""
        switch settings.mode {
        case .primary:
            conflist = CNIConflist.primary(socket: socket, route: settings.route, mtu: settings.mtu)
        case .chained:
            guard let source = CNIConflist.current(among: TextFile.list(settings.directory), excluding: settings.name) else {
                return .waiting("no other network's conflist in \(settings.directory) to chain onto yet")
            }
            guard settings.name < source else {
                return .impossible("\(settings.name) would not sort before \(source), so runtimes would not use it: choose another --cni-conflist name")
            }
            do {
                let parsed = try JSON(parsing: try TextFile.read(settings.directory + "/" + source))
                conflist = try CNIConflist.chained(parsed, name: source, socket: socket, route: settings.route, mtu: settings.mtu)
            } catch {
                return .waiting("cannot chain onto \(settings.directory)/\(source) yet: \(error)")
            }
            note = ", chained after \(source)"
        }
        let text = conflist.pretty + "\n"
        if (try? TextFile.read(settings.path)) == text { return .unchanged }
        do {
            try TextFile.makeDirectories(settings.directory)
            try TextFile.writeAtomically(settings.path, Array(text.utf8), mode: 0o644)
        } catch {
            return .failed("\(error)")
        }
        return .written("\(settings.path)\(note)")
    }
}

public import MyceliumJSON

/// The network configuration list that makes a runtime call our plugin, for `install-cni` and
/// for the agent, which writes it once it answers (`--cni-conflist`).
///
/// Primary mode: a conflist of our plugin alone. Chained mode: the conflist the runtime uses
/// now (the first `*.conflist` by name that is not ours) with our plugin appended to its chain,
/// written under a name that sorts before it, so the runtime picks the chain and the other
/// CNI's own file stays as it was.
public enum CNIConflist {
    public enum Mode: String, Sendable, CaseIterable {
        case primary, chained
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The default file name for a mode: runtimes use the first conflist by name.
    public static func defaultName(_ mode: Mode) -> String { mode == .chained ? "00-mycelium.conflist" : "10-mycelium.conflist" }

    public static func plugin(socket: String, route: String, mtu: Int) -> JSON {
        .object([("type", .string("mycelium-cni")), ("socket", .string(socket)), ("route", .string(route)), ("mtu", .int(mtu))])
    }

    /// The conflist (spec 1.0.0, 1.1.0 offered to runtimes that pick from `cniVersions`).
    public static func primary(socket: String, route: String, mtu: Int) -> JSON {
        .object([
            ("cniVersion", .string("1.0.0")),
            ("cniVersions", .array([.string("1.0.0"), .string("1.1.0")])),
            ("name", .string("mycelium")),
            ("plugins", .array([plugin(socket: socket, route: route, mtu: mtu)])),
        ])
    }

    /// `source` with our plugin appended to its chain; everything else of it is kept as it is.
    public static func chained(_ source: JSON, name: String, socket: String, route: String, mtu: Int) throws(Failure) -> JSON {
        guard case let .object(members) = source, let plugins = source["plugins"]?.array, !plugins.isEmpty else {
            throw Failure("\(name) is not a conflist with a \"plugins\" list")
        }
        if plugins.contains(where: { $0["type"]?.string == "mycelium-cni" }) {
            throw Failure("\(name) already chains mycelium-cni")
        }
        let version = source["cniVersion"]?.string ?? ""
        guard CNIVersion.isAtLeast(version, "0.3.0") else {
            throw Failure("\(name) has cniVersion '\(version)'; chaining needs 0.3.0 or newer")
        }
        return .object(members.map { key, value in
            (key, key == "plugins" ? .array(plugins + [plugin(socket: socket, route: route, mtu: mtu)]) : value)
        })
    }

    /// The conflist a runtime uses now among `names` (a directory's entries), ignoring ours: the
    /// first `*.conflist` by name.
    public static func current(among names: [String], excluding ours: String) -> String? {
        names.filter { $0.hasSuffix(".conflist") && $0 != ours && !$0.hasPrefix(".") }.min()
    }
}

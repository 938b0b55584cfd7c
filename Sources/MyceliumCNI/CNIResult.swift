public import MyceliumJSON

/// Builds the ADD result (spec §1.5) in the request's version.
///
/// Primary: our two interfaces (host side, then the container's with its sandbox), one IP on
/// the container interface, our routes, empty DNS. Chained: the previous result with our
/// interfaces, IP and routes appended (indices shifted), everything else passed through.
public enum CNIResult {
    public static func build(_ a: Attachment, version: String, prevResult: JSON?) -> JSON {
        let previous = prevResult ?? .object([])
        var interfaces = previous["interfaces"]?.array ?? []
        var ips = previous["ips"]?.array ?? []
        var routes = previous["routes"]?.array ?? []
        let preOne = CNIVersion.hasIPVersionField(version)
        interfaces.append(.object([("name", .string(a.hostInterface)), ("mac", .string(a.hostMac))]
            + (CNIVersion.isAtLeast(version, "1.1.0") ? [("mtu", .int(a.mtu))] : [])))
        interfaces.append(.object([("name", .string(a.interface)), ("mac", .string(a.mac))]
            + (CNIVersion.isAtLeast(version, "1.1.0") ? [("mtu", .int(a.mtu))] : [])
            + [("sandbox", .string(a.sandbox))]))
        var ip: [(String, JSON)] = []
        if preOne { ip.append(("version", .string("6"))) }
        ip += [("interface", .int(interfaces.count - 1)), ("address", .string(a.address)), ("gateway", .string(a.gateway))]
        ips.append(.object(ip))
        for destination in a.routes {
            routes.append(.object([("dst", .string(destination)), ("gw", .string(a.gateway))]))
        }
        var members: [(String, JSON)] = [("cniVersion", .string(version)), ("interfaces", .array(interfaces)),
                                         ("ips", .array(ips)), ("routes", .array(routes))]
        members.append(("dns", previous["dns"] ?? .object([])))
        // Anything else the previous plugin reported is kept.
        if case let .object(prev) = previous {
            for (key, value) in prev where !members.contains(where: { $0.0 == key }) { members.append((key, value)) }
        }
        return .object(members)
    }
}

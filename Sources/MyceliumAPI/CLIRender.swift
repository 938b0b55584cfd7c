/// The CLI's human output for the API's documents: aligned tables, sizes and ages made
/// readable. Kept apart from the commands so golden tests can feed it fixed documents.
public enum CLIRender {
    /// `mycelium peers list`.
    /// A "Pinned key" column (its first 16 hex digits) appears when some peer has one.
    public static func peers(_ document: JSON) -> String {
        let peers = document.array ?? []
        let pinned = peers.contains { $0["pinnedKey"]?.string != nil }
        return Table.render(
            header: ["Protocol", "Socket", "Type", "Connection", "Rx total", "Tx total", "Discovered", "Last connection"]
                + (pinned ? ["Pinned key"] : []),
            rows: peers.map { p in
                [p["endpoint"]?["proto"]?.string ?? "?", p["endpoint"]?["addr"]?["socket"]?.string ?? "?",
                 p["type"]?.string ?? "?", p["connectionState"]?.string ?? "?",
                 bytes(p["rxBytes"]?.uint64 ?? 0), bytes(p["txBytes"]?.uint64 ?? 0),
                 ago(p["discovered"]?.uint64), ago(p["lastConnected"]?.uint64)]
                    + (pinned ? [p["pinnedKey"]?.string.map { String($0.prefix(16)) + "…" } ?? "-"] : [])
            },
            rightAligned: [4, 5, 6, 7])
    }

    /// `mycelium routes selected|fallback`.
    public static func routes(_ document: JSON) -> String {
        Table.render(
            header: ["Subnet", "Next hop", "Metric", "Seq No"],
            rows: (document.array ?? []).map { r in
                let metric = r["metric"].map { $0.string ?? $0.uint64.map(String.init) ?? "?" } ?? "?"
                return [r["subnet"]?.string ?? "?", r["nextHop"]?.string ?? "?", metric, r["seqno"]?.uint64.map(String.init) ?? "?"]
            },
            rightAligned: [2, 3])
    }

    /// `mycelium routes queried`.
    public static func queried(_ document: JSON) -> String {
        Table.render(header: ["Subnet", "Query expires in"],
                     rows: (document.array ?? []).map { [$0["subnet"]?.string ?? "?", ($0["expiration"]?.string ?? "?") + "s"] },
                     rightAligned: [1])
    }

    /// `mycelium stats packets`: two tables.
    public static func packetStats(_ document: JSON) -> String {
        [("By source", "bySource"), ("By destination", "byDestination")].map { title, key in
            title + "\n" + Table.render(
                header: ["IP", "Packets", "Bytes"],
                rows: (document[key]?.array ?? []).map { e in
                    [e["ip"]?.string ?? "?", e["packetCount"]?.uint64.map(String.init) ?? "?", bytes(e["byteCount"]?.uint64 ?? 0)]
                },
                rightAligned: [1, 2])
        }.joined(separator: "\n\n")
    }

    /// `mycelium sessions list`.
    public static func sessions(_ document: JSON) -> String {
        Table.render(
            header: ["Address", "State", "Speaks sessions", "Role", "Age", "Packets sent", "Last received", "Fallback left"],
            rows: (document.array ?? []).map { s in
                let role = s["initiator"]?.bool.map { $0 ? "initiator" : "responder" } ?? "-"
                let fallback = s["fallbackSecondsLeft"]?.uint64 ?? 0
                return [s["address"]?.string ?? "?", s["state"]?.string ?? "?", (s["capable"]?.bool ?? false) ? "yes" : "no", role,
                        s["ageSeconds"]?.uint64.map { ago($0) } ?? "-", s["packetsSent"]?.uint64.map(String.init) ?? "-",
                        s["lastReceivedSecondsAgo"]?.uint64.map { ago($0) + " ago" } ?? "-",
                        fallback > 0 ? ago(fallback) : "-"]
            },
            rightAligned: [4, 5, 6, 7])
    }

    /// 1023 B, 1.50 KiB, 12.00 MiB …
    public static func bytes(_ n: UInt64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard n >= 1024 else { return "\(n) B" }
        var value = Double(n) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        let hundredths = Int((value * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac) \(units[unit])"
    }

    /// Seconds ago as `42s`, `3m07s`, `5h02m`, `2d03h`; `never` for null.
    public static func ago(_ seconds: UInt64?) -> String {
        guard let s = seconds else { return "never" }
        func two(_ v: UInt64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        switch s {
        case ..<60: return "\(s)s"
        case ..<3600: return "\(s / 60)m\(two(s % 60))s"
        case ..<86400: return "\(s / 3600)h\(two(s / 60 % 60))m"
        default: return "\(s / 86400)d\(two(s / 3600 % 24))h"
        }
    }

    /// RFC 3986: everything but unreserved characters escaped (`tcp://…` → `tcp%3A%2F%2F…`).
    public static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}

/// Columns separated by two spaces, padded to the widest cell; no trailing spaces.
public enum Table {
    public static func render(header: [String], rows: [[String]], rightAligned: Set<Int> = []) -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        return all.map { row in
            var line = row.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return rightAligned.contains(c) ? pad + cell : cell + pad
            }.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }
}

/// CNI specification versions this plugin speaks; results are written in the request's.
public enum CNIVersion {
    public static let supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    public static let latest = "1.1.0"
    /// What a configuration without `cniVersion` means (spec).
    public static let implied = "0.1.0"

    /// Numeric parts for ordering ("0.4.0" < "1.0.0").
    public static func parts(_ version: String) -> [Int]? {
        let parts = version.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return parts.map { $0! }
    }

    public static func isAtLeast(_ version: String, _ minimum: String) -> Bool {
        guard let a = parts(version), let b = parts(minimum) else { return false }
        return a.lexicographicallyPrecedes(b) == false
    }

    /// Results before 1.0.0 carry `"version": "6"` in each IP entry.
    public static func hasIPVersionField(_ version: String) -> Bool { !isAtLeast(version, "1.0.0") }
}

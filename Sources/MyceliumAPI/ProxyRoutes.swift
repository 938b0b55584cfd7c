import Hummingbird
import MyceliumCore
import MyceliumNode
import NIOCore

/// The SOCKS5 helper's endpoints (spec §9, §13), as Rust Mycelium v0.7.10 answers them.
extension APIServer {
    static let proxyPaths: [String: [HTTPRequest.Method]] = [
        "/api/v1/admin/proxy": [.get, .post, .delete], "/api/v1/admin/proxy/probe": [.get, .delete],
    ]

    static func addProxyRoutes(to api: RouterGroup<Context>, node: Node) {
        api.get("/admin/proxy") { _, _ in
            json(.array((node.proxy?.known ?? []).map { .string($0.description) }))
        }
        api.post("/admin/proxy") { request, _ in
            let body = try await request.body.collect(upTo: maxBody)
            guard let document = try? JSON(parsing: body.readableBytesView), case let .object(members) = document,
                  let remote = members.first(where: { $0.0 == "remote" })?.1 else {
                return plain(.badRequest, "expected a JSON body {\"remote\": \"[ipv6]:port\"} or {\"remote\": null}")
            }
            var target: SocketAddress?
            if !remote.isNull {
                guard let text = remote.string, let socket = proxyRemote(text) else {
                    return plain(.badRequest, "remote must be IP:PORT, e.g. [407:8d2::1]:1080, or null")
                }
                target = socket
            }
            guard let proxy = node.proxy else { return plain(.serviceUnavailable, "node is not running") }
            do throws(SOCKSProxy.Failure) {
                let chosen = try await proxy.connect(to: target)
                return json(.string(socketText(chosen)))
            } catch {
                return plain(.notFound, "\(error)")
            }
        }
        api.delete("/admin/proxy") { _, _ in
            node.proxy?.disconnect()
            return Response(status: .noContent)
        }
        // A GET that starts something, as Rust has it.
        api.get("/admin/proxy/probe") { _, _ in
            node.proxy?.startProbing()
            return Response(status: .noContent)
        }
        api.delete("/admin/proxy/probe") { _, _ in
            node.proxy?.stopProbing()
            return Response(status: .noContent)
        }
    }

    /// `[ipv6]:port` or `ipv4:port`.
    static func proxyRemote(_ text: String) -> SocketAddress? {
        guard let address = APIAddress(text) else { return nil }
        return try? SocketAddress(ipAddress: address.host, port: Int(address.port))
    }

    /// As Rust's `SocketAddr` prints it: `[ipv6]:port`.
    static func socketText(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        let host = IPv6Address(ip).map(\.description) ?? ip
        return ip.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

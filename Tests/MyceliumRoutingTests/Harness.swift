@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting

/// One router under test, with neighbours we play ourselves.
struct Harness {
    var router: Router
    var now = Instant.zero
    var rng = SeededRandom(seed: 11)
    var actions: [RouterAction] = []

    init(seed: UInt64 = 1) {
        var r = SeededRandom(seed: seed)
        router = Router(routerId: RouterId(publicKey: PublicKey(bytes: r.bytes(32))!, random: 1), now: .zero)
        rng = r
    }

    /// A node identity the test can announce routes for.
    mutating func makeNode() -> RouterId {
        RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, random: rng.next())
    }

    @discardableResult
    mutating func handle(_ event: RouterEvent) -> [RouterAction] {
        actions = router.handle(event, now: now)
        return actions
    }

    /// Runs every timer up to `t`. With `alive`, every neighbour answers every Hello at once.
    @discardableResult
    mutating func advance(to t: Int64, alive: Bool = false) -> [RouterAction] {
        var all: [RouterAction] = []
        while router.nextWakeUp.milliseconds <= t {
            now = router.nextWakeUp
            let out = router.handle(.timer, now: now)
            all += out
            guard alive else { continue }
            for (tlv, n) in Harness.sent(out) {
                if case .hello = tlv { all += router.handle(.received(.ihu(IHU(rxCost: 0, interval: 6000)), from: n), now: now) }
            }
        }
        now = Instant(milliseconds: t)
        actions = all
        return all
    }

    @discardableResult
    mutating func add(_ n: UInt64, cost: UInt16 = LinkCost.tcpIPv6) -> [RouterAction] {
        handle(.neighbourAdded(NeighbourId(n), staticCost: cost))
    }

    @discardableResult
    mutating func receive(_ tlv: ControlTLV, from n: UInt64) -> [RouterAction] {
        handle(.received(tlv, from: NeighbourId(n)))
    }

    /// An Update for `node`'s /64 as a neighbour would send it.
    static func update(_ node: RouterId, metric: UInt16, seqno: UInt16 = 0, interval: UInt16 = ProtocolConstants.updateIntervalCs,
                       subnet: Subnet? = nil) -> ControlTLV {
        .update(Update(interval: interval, seqno: SeqNo(seqno), metric: Metric(metric),
                       subnet: subnet ?? node.publicKey.subnet, routerId: node))
    }

    static func sent(_ actions: [RouterAction]) -> [(ControlTLV, NeighbourId)] {
        actions.compactMap { if case let .send(tlv, to) = $0 { return (tlv, to) }; return nil }
    }

    static func updates(_ actions: [RouterAction]) -> [(Update, NeighbourId)] {
        sent(actions).compactMap { if case let .update(u) = $0.0 { return (u, $0.1) }; return nil }
    }

    static func seqnoRequests(_ actions: [RouterAction]) -> [(SeqNoRequest, NeighbourId)] {
        sent(actions).compactMap { if case let .seqNoRequest(r) = $0.0 { return (r, $0.1) }; return nil }
    }

    static func routeRequests(_ actions: [RouterAction]) -> [(RouteRequest, NeighbourId)] {
        sent(actions).compactMap { if case let .routeRequest(r) = $0.0 { return (r, $0.1) }; return nil }
    }
}

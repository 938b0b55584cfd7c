import MyceliumCore

extension Router {
    /// Everything that is due at `now` (spec §5.4, §5.5, §5.8).
    mutating func timers(now: Instant, into actions: inout [RouterAction]) {
        if now >= nextHello {
            for id in neighbourIds {
                let n = neighbours[id]!
                actions.append(.send(.hello(Hello(seqno: n.helloSeqno, interval: ProtocolConstants.helloIntervalCs)), to: id))
                neighbours[id]!.helloSeqno = n.helloSeqno.incremented()
                neighbours[id]!.lastHelloSent = now
                neighbours[id]!.helloAnswered = false
            }
            nextHello = Router.advance(nextHello, by: ProtocolConstants.helloIntervalMs, past: now)
        }
        if now >= nextDeadCheck {
            let dead = neighbourIds.filter { now - neighbours[$0]!.lastIHU > ProtocolConstants.deadPeerThresholdMs }
            for id in dead {
                actions.append(.disconnect(id))
                removeNeighbour(id, died: true, now: now, into: &actions)
            }
            nextDeadCheck = Router.advance(nextDeadCheck, by: ProtocolConstants.deadPeerCheckIntervalMs, past: now)
        }
        if now >= nextPropagation {
            sendOwnUpdate(to: neighbourIds, now: now, into: &actions)
            nextPropagation = Router.advance(nextPropagation, by: ProtocolConstants.routePropagationIntervalMs, past: now)
        }
        if let due = earliestRouteExpiry, now >= due { expireRoutes(now: now, into: &actions) }
        if let due = earliestQueryExpiry, now >= due { expireQueries(now: now, into: &actions) }
        if let due = earliestRetry, now >= due { retryLostRoutes(now: now, into: &actions) }
        if now >= nextGarbageCollection {
            stats.sourceKeysExpired += sources.collectGarbage(now: now)
            routeRequests.expire(now: now)
            seqnoRequests.expire(now: now)
            nextGarbageCollection = Router.advance(nextGarbageCollection, by: RouterTuning.garbageCollectionIntervalMs, past: now)
        }
    }

    /// The next period boundary after `now` (skips missed periods instead of bursting).
    static func advance(_ t: Instant, by period: Int64, past now: Instant) -> Instant {
        var next = t + period
        if next <= now { next = now + period }
        return next
    }

    /// Expired selected routes become retractions held 6 s; other expired entries go.
    mutating func expireRoutes(now: Instant, into actions: inout [RouterAction]) {
        earliestRouteExpiry = nil
        for subnet in routes.keys.sorted() {
            let r = routes[subnet]!
            guard r.entries.contains(where: { $0.expires <= now }) else {
                for e in r.entries { noteRouteExpiry(e.expires) }
                continue
            }
            let before = selection(of: subnet)
            var kept: [RouteEntry] = []
            for var e in r.entries {
                if e.expires > now {
                    kept.append(e)
                } else if r.selected == e.neighbour, !e.metric.isInfinite {
                    stats.expiredRoutesRetracted += 1
                    e.metric = .infinite
                    e.expires = now + ProtocolConstants.retractedRouteHoldMs
                    kept.append(e)
                } else {
                    stats.expiredRoutesRemoved += 1
                    neighbours[e.neighbour]?.routeCount -= 1
                }
            }
            for e in kept { noteRouteExpiry(e.expires) }
            let slot = routes.index(forKey: subnet)!
            routes[at: slot].entries = RouteEntries(kept)
            if routes[at: slot].selected.map({ id in !kept.contains { $0.neighbour == id } }) ?? false {
                routes[at: slot].selected = nil
            }
            reselect(subnet, before: before, slot: slot, now: now, into: &actions)
        }
    }

    /// Beyond Rust: a lost route is asked for again (SeqNoRequest to the neighbours that
    /// announce it, or a RouteRequest to everyone when none does) with backoff, until one is
    /// selected. Without it, a request lost with a crashed next hop left routes missing for good.
    mutating func retryLostRoutes(now: Instant, into actions: inout [RouterAction]) {
        earliestRetry = nil
        for subnet in lostRoutes.keys.sorted() {
            guard var lost = lostRoutes[subnet] else { continue }
            if selection(of: subnet) != nil || lost.attempts >= RouterTuning.lostRouteRetries {
                lostRoutes[subnet] = nil
                continue
            }
            if lost.next <= now, !retryBudget.take(now: now.milliseconds) {
                // Over the retry budget: this one waits a second, without using an attempt.
                lost.next = now + 1_000
                lostRoutes[subnet] = lost
                stats.limitsHit += 1
            } else if lost.next <= now {
                lost.attempts += 1
                lost.next = now + RouterTuning.lostRouteRetryBaseMs << Int64(lost.attempts)
                lostRoutes[subnet] = lost
                stats.lostRouteRetries += 1
                let announcers = routes[subnet]?.entries.filter { neighbours[$0.neighbour] != nil }.map(\.neighbour) ?? []
                if announcers.isEmpty {
                    sendRouteRequest(subnet, generation: 0, to: neighbourIds, now: now, into: &actions)
                } else {
                    // Ask for the router id of a live finite entry, else the one we lost.
                    let r = routes[subnet]
                    let routerId = r.flatMap { r in
                        r.entries.first { !$0.metric.isInfinite && neighbours[$0.neighbour] != nil }.map { fullRouterId(of: $0, in: r) }
                    } ?? lost.routerId
                    sendSeqNoRequest(subnet, routerId: routerId, to: announcers, now: now, into: &actions)
                }
            }
            noteRetry(lost.next)
        }
    }

    mutating func noteRetry(_ t: Instant) {
        if let e = earliestRetry, e <= t { return }
        earliestRetry = t
    }

    mutating func expireQueries(now: Instant, into actions: inout [RouterAction]) {
        earliestQueryExpiry = nil
        for (subnet, expiry) in queried.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
            if expiry <= now {
                queried[subnet] = nil
                if selection(of: subnet) == nil { actions.append(.queryFailed(subnet)) }
            } else if earliestQueryExpiry.map({ expiry < $0 }) ?? true {
                earliestQueryExpiry = expiry
            }
        }
    }
}

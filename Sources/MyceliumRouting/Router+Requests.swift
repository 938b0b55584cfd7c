import MyceliumCore

extension Router {
    // MARK: - RouteRequests (spec §5.10)

    mutating func handleRouteRequest(_ request: RouteRequest, from n: NeighbourId, now: Instant, into actions: inout [RouterAction]) {
        guard let prefix = request.prefix else {
            // Wildcard: our whole table, except routes through the requester, and our own route.
            for subnet in routes.keys.sorted() {
                if let sel = selection(of: subnet), sel.neighbour != n {
                    sendSelectedUpdate(subnet, to: [n], now: now, into: &actions)
                }
            }
            sendOwnUpdate(to: [n], now: now, into: &actions)
            return
        }
        // Rust panics on an IPv4 request it cannot answer (spec §3.4); we just ignore non-overlay prefixes.
        guard prefix.ipv6 != nil, Subnet.overlay.contains(prefix) else { return }
        if localSubnet.contains(prefix) {
            sendOwnUpdate(to: [n], now: now, into: &actions)
            return
        }
        if let subnet = knownSubnet(covering: prefix) {
            if let sel = selection(of: subnet), sel.neighbour != n {
                sendSelectedUpdate(subnet, to: [n], now: now, into: &actions)
            }
            return  // routes but none selected: no reply (a SeqNoRequest will fix it)
        }
        if let expiry = queried[prefix], expiry > now { return }  // the answer will be a triggered update
        // The generation is the peer's byte: 255 must not overflow (it once stopped the daemon).
        guard Int(request.generation) + 1 < Int(ProtocolConstants.maxRouteRequestGeneration) else { return }
        guard admitQuery(from: n, into: &actions) else { return }
        markQueried(prefix, now: now)
        sendRouteRequest(prefix, generation: request.generation + 1,
                         to: neighbourIds.filter { $0 != n }, now: now, into: &actions)
    }

    /// Sends a RouteRequest, skipping neighbours that got one for the same subnet within 15 s
    /// (unless ours travels further, i.e. has a smaller generation).
    mutating func sendRouteRequest(_ subnet: Subnet, generation: UInt8, to targets: [NeighbourId], now: Instant,
                                   into actions: inout [RouterAction]) {
        let request = ControlTLV.routeRequest(RouteRequest(generation: generation, prefix: subnet))
        for t in targets where routeRequests.shouldSend(subnet, generation: generation, to: t, now: now) {
            guard routeRequests.canRecord(subnet) else {
                stats.limitsHit += 1
                return
            }
            routeRequests.record(subnet, generation: generation, to: t, now: now)
            stats.routeRequestsSent += 1
            actions.append(.send(request, to: t))
        }
    }

    /// Whether one more subnet may be looked for (`RouterLimits.pendingQueries`); a refusal is
    /// reported against `n` when a neighbour's request caused it.
    mutating func admitQuery(from n: NeighbourId?, into actions: inout [RouterAction]) -> Bool {
        guard queried.count >= RouterLimits.pendingQueries else { return true }
        stats.limitsHit += 1
        if let n { actions.append(.refused(n, .pendingQueries)) }
        return false
    }

    mutating func markQueried(_ subnet: Subnet, now: Instant) {
        let expiry = now + ProtocolConstants.routeQueryTimeoutMs
        queried[subnet] = expiry
        if earliestQueryExpiry.map({ expiry < $0 }) ?? true { earliestQueryExpiry = expiry }
    }

    /// The routing-table key for a request prefix: the prefix itself, or the /64 holding it.
    func knownSubnet(covering prefix: Subnet) -> Subnet? {
        if routes[prefix] != nil { return prefix }
        guard prefix.prefixLength > 64, let address = prefix.ipv6 else { return nil }
        let slash64 = Subnet.slash64(of: address)
        return routes[slash64] != nil ? slash64 : nil
    }

    // MARK: - the datapath needs a route (spec §4.3, §4.4)

    mutating func routeNeeded(_ address: IPv6Address, now: Instant, into actions: inout [RouterAction]) {
        guard Subnet.overlay.contains(address), !localSubnet.contains(address) else { return }
        let subnet = Subnet.slash64(of: address)
        if let r = routes[subnet] {
            if let sel = selection(of: subnet) {
                // A used route close to expiry is refreshed before it lapses.
                if sel.expires - now < ProtocolConstants.routeAlmostExpiredMs {
                    sendRouteRequest(subnet, generation: 0, to: neighbourIds, now: now, into: &actions)
                }
                return
            }
            if let expiry = queried[subnet], expiry > now { return }
            // Routes exist but none is selected: ask their announcers for a newer seqno.
            guard admitDatapathQuery(subnet, now: now, into: &actions) else { return }
            markQueried(subnet, now: now)
            let announcers = r.entries.filter { neighbours[$0.neighbour] != nil }
            guard let entry = announcers.first ?? r.entries.first else { return }
            let routerId = fullRouterId(of: entry, in: r)
            sendSeqNoRequest(subnet, routerId: routerId, to: announcers.map(\.neighbour), now: now, into: &actions)
            return
        }
        if let expiry = queried[subnet], expiry > now { return }
        guard admitDatapathQuery(subnet, now: now, into: &actions) else { return }
        markQueried(subnet, now: now)
        sendRouteRequest(subnet, generation: 0, to: neighbourIds, now: now, into: &actions)
    }

    /// Whether the datapath may start a query for `subnet` (its rate and the pending-query
    /// cap). A refusal fails the query at once, so the packets queued for it are answered
    /// ("no route") instead of waiting for a query that never started.
    mutating func admitDatapathQuery(_ subnet: Subnet, now: Instant, into actions: inout [RouterAction]) -> Bool {
        let renewing = queried[subnet] != nil
        guard renewing || queried.count < RouterLimits.pendingQueries, queryBudget.take(now: now.milliseconds) else {
            stats.limitsHit += 1
            actions.append(.queryFailed(subnet))
            return false
        }
        return true
    }

    // MARK: - SeqNoRequests (spec §5.11)

    /// Originates a SeqNoRequest for (subnet, router id): seqno = feasibility seqno + 1 (1 if
    /// unknown), hop count 64; a neighbour that already got this exact request is not asked again.
    mutating func sendSeqNoRequest(_ subnet: Subnet, routerId: RouterId, to targets: [NeighbourId], now: Instant,
                                   into actions: inout [RouterAction]) {
        let seqno = sources.distance(subnet: subnet, routerId: routerId).map { $0.seqno.incremented() } ?? SeqNo(1)
        let key = SeqNoRequestCache.Key(routerId: routerId, prefix: subnet, seqno: seqno)
        let request = ControlTLV.seqNoRequest(SeqNoRequest(seqno: seqno, routerId: routerId, prefix: subnet))
        for t in targets where !seqnoRequests.wasAsked(key, neighbour: t, now: now) {
            guard seqnoRequests.canRecord(key) else {
                stats.limitsHit += 1
                return
            }
            seqnoRequests.recordSent(key, to: t, now: now)
            stats.seqnoRequestsSent += 1
            actions.append(.send(request, to: t))
        }
    }

    /// Whether a feasible, finite route from another neighbour carries the requested router id
    /// with at least the requested seqno.
    func hasUnselectedAnswer(_ request: SeqNoRequest, from n: NeighbourId) -> Bool {
        guard let subnet = knownSubnet(covering: request.prefix), let r = routes[subnet] else { return false }
        return r.entries.contains { e in
            fullRouterId(of: e, in: r) == request.routerId && !e.seqno.isLess(than: request.seqno) && !e.metric.isInfinite && e.neighbour != n
                && neighbours[e.neighbour] != nil
                && sources.isFeasible(subnet: subnet, routerId: fullRouterId(of: e, in: r), seqno: e.seqno, metric: e.metric)
        }
    }

    /// Reselects the request's subnet with the requester recorded: `choose` prefers a route
    /// that answers it, and `reselect` sends that route to everyone waiting.
    mutating func answerFromUnselected(_ request: SeqNoRequest, from n: NeighbourId, now: Instant, into actions: inout [RouterAction]) {
        guard hasUnselectedAnswer(request, from: n), let subnet = knownSubnet(covering: request.prefix),
              let slot = routes.index(forKey: subnet) else { return }
        let before = selection(at: slot)
        reselect(subnet, before: before, slot: slot, now: now, into: &actions)
    }

    mutating func handleSeqNoRequest(_ request: SeqNoRequest, from n: NeighbourId, now: Instant, into actions: inout [RouterAction]) {
        let prefix = request.prefix
        let key = SeqNoRequestCache.Key(routerId: request.routerId, prefix: prefix, seqno: request.seqno)
        // 1. We sent or forwarded this very request recently: a loop or a duplicate. Rust drops
        // it outright; we also remember the requester, so when the answer comes back it reaches
        // every side that asked, not only the first (without this a ring cut can leave half the
        // ring waiting for an answer that only went one way).
        if seqnoRequests.isDuplicate(key, now: now) {
            stats.seqnoDropped += 1
            if request.routerId != routerId {
                seqnoRequests.addRequester(key, n, now: now)
                answerFromUnselected(request, from: n, now: now, into: &actions)
            }
            return
        }
        // A request for a prefix outside 400::/7 can never be answered by anyone.
        guard prefix.ipv6 != nil, Subnet.overlay.contains(prefix) else {
            stats.seqnoDropped += 1
            return
        }
        if localSubnet.contains(prefix) {
            // 3. Our own route: bump the seqno (at most every 4 s) and tell everyone.
            if request.routerId == routerId, request.seqno.isGreater(than: seqno) {
                if lastSeqnoBump.map({ now - $0 >= ProtocolConstants.seqnoBumpTimeoutMs }) ?? true {
                    seqno = seqno.incremented()
                    lastSeqnoBump = now
                    stats.seqnoBumps += 1
                    sendOwnUpdate(to: neighbourIds, now: now, into: &actions)
                }
            } else {
                // Rust sends nothing here; our current announcement answers a request for an old
                // router id (we restarted) or an old seqno, which heals restarts faster.
                stats.seqnoRepliesLocal += 1
                sendOwnUpdate(to: [n], now: now, into: &actions)
            }
            return
        }
        // 2. Our selected route satisfies the request: answer from it. Rust adds the requester's
        // link cost to the metric here (spec §5.8, bug?); we advertise the same metric as in every
        // other Update (route metric + next hop cost), which is the distance we actually offer.
        if let subnet = knownSubnet(covering: prefix), let sel = selection(of: subnet),
           sel.routerId != request.routerId || !sel.seqno.isLess(than: request.seqno) {
            stats.seqnoRepliesLocal += 1
            sendSelectedUpdate(subnet, to: [n], now: now, into: &actions)
            return
        }
        // Beyond Rust: a feasible route that is not selected may already carry the seqno asked
        // for (it came in answer to someone else's request). Remember the requester and
        // reselect: `choose` then prefers that route and the requester is answered from it,
        // instead of the request going on towards a source that has already answered.
        if request.routerId != routerId, seqnoRequests.canRecord(key), hasUnselectedAnswer(request, from: n) {
            seqnoRequests.addRequester(key, n, now: now)
            answerFromUnselected(request, from: n, now: now, into: &actions)
            return
        }
        // 4. Forward towards the source, to one neighbour that announced the prefix.
        guard request.hopCount >= 2, request.routerId != routerId,
              let subnet = knownSubnet(covering: prefix), let r = routes[subnet] else {
            stats.seqnoDropped += 1
            return
        }
        let candidates = r.entries.filter { $0.neighbour != n && neighbours[$0.neighbour] != nil && !$0.metric.isInfinite }
        let cache = seqnoRequests
        let recentlyTried: (RouteEntry) -> Bool = { e in
            cache.lastAsked(routerId: request.routerId, prefix: prefix, neighbour: e.neighbour)
                .map { now - $0 < ProtocolConstants.seqnoBumpTimeoutMs } ?? false
        }
        let feasible = candidates.filter {
            sources.isFeasible(subnet: subnet, routerId: fullRouterId(of: $0, in: r), seqno: $0.seqno, metric: $0.metric) && !recentlyTried($0)
        }
        guard let target = (feasible.first ?? candidates.first)?.neighbour else {
            stats.seqnoDropped += 1
            return
        }
        guard seqnoRequests.canRecord(key) else {
            stats.limitsHit += 1
            actions.append(.refused(n, .requestCache))
            return
        }
        stats.seqnoForwarded += 1
        var forwarded = request
        forwarded.hopCount -= 1
        seqnoRequests.recordSent(key, to: target, now: now)
        seqnoRequests.addRequester(key, n, now: now)
        actions.append(.send(.seqNoRequest(forwarded), to: target))
    }
}

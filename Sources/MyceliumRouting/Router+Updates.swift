import MyceliumCore

/// The selected route of a subnet as seen from outside: what a triggered update compares.
struct Selection: Equatable {
    let neighbour: NeighbourId
    let routerId: RouterId
    let seqno: SeqNo
    /// Entry metric + link cost: what we advertise.
    let metric: Metric
    let expires: Instant
}

extension Router {
    // MARK: - Update processing (spec §5.6)

    mutating func handleUpdate(_ u: Update, from n: NeighbourId, now: Instant, into actions: inout [RouterAction]) {
        // 1. Filters: inside 400::/7, and the announcer owns it unless it retracts. Rust accepts
        // any prefix of at least /64; we take exactly /64, the only length any node announces:
        // a longer prefix under someone's /64, sent with their public router id, would win the
        // longest-prefix match over the owner's own route (docs/security.md, "Routing abuse").
        // A subnet already in the table was checked against its owner when it was created:
        // the same key again needs no BLAKE3 (nor a cache lookup).
        guard u.subnet.ipv6 != nil, Subnet.overlay.contains(u.subnet), u.subnet.prefixLength == 64 else {
            stats.updatesDenied += 1
            actions.append(.refused(n, .badUpdate))
            return
        }
        let known = routes.index(forKey: u.subnet)
        guard u.isRetraction || known.map({ owners[routes[at: $0].owner] == u.routerId.publicKey }) == true
                || u.subnet.contains(ownerAddress(of: u.routerId.publicKey)) else {
            stats.updatesDenied += 1
            actions.append(.refused(n, .badUpdate))
            return
        }
        // 2. Our own /64 is ours alone. Someone announcing it with our router id and a seqno
        // above ours (a stale announcement from before a restart, or a forged jump meant to make
        // our own Updates look old) is answered as RFC 8966 §3.8.1.2 says: we jump past it and
        // announce, so our route is feasible again everywhere.
        if localSubnet.contains(u.subnet) {
            if u.routerId == routerId, !u.isRetraction, u.seqno.isGreater(than: seqno) {
                seqno = u.seqno.incremented()
                stats.seqnoBumps += 1
                sendOwnUpdate(to: neighbourIds, now: now, into: &actions)
            }
            return
        }

        let subnet = u.subnet
        let sourceSlot = sources.slot(of: subnet)
        // A retraction is always feasible, and its router id is its sender's, which the source
        // table cannot look up (it holds only owners' ids and ours).
        let distance = u.isRetraction ? nil : sources.distance(at: sourceSlot, routerId: u.routerId)
        let feasible = SourceTable.isFeasible(distance, seqno: u.seqno, metric: u.metric)
        let expires = now + ProtocolConstants.routeHoldMs(intervalCs: u.interval, metric: u.metric)
        let before = known.flatMap { selection(at: $0) }
        let entry = RouteEntry(neighbour: n, routerId: u.routerId, seqno: u.seqno, metric: u.metric, expires: expires)

        // One hash lookup; the index addresses the entry in place for the rest of this call.
        // A router id not yet in the source table for this subnet would add one more there
        // once we announce it; past `RouterLimits.routerIdsPerSubnet` it is refused.
        if !u.isRetraction, distance == nil, sources.routerIdCount(at: sourceSlot) >= RouterLimits.routerIdsPerSubnet {
            stats.limitsHit += 1
            actions.append(.refused(n, .routerIdsPerSubnet))
            return
        }
        // Nothing above changed the table, so `known` still addresses the subnet's entry.
        guard let slot = known else {
            // 4. First announcement of this subnet.
            if !feasible {
                sendSeqNoRequest(subnet, routerId: u.routerId, to: [n], now: now, into: &actions)
            } else if !u.isRetraction {
                if let refusal = refusalOfNewEntry(from: n, newSubnet: true) {
                    stats.limitsHit += 1
                    actions.append(.refused(n, refusal))
                    return
                }
                var fresh = SubnetRoutes(owner: ownerRef(for: u.routerId.publicKey))
                fresh.entries.append(entry)
                neighbours[existing: n].routeCount += 1
                routes[subnet] = fresh
                noteRouteExpiry(expires)
                tableDirty = true  // a new key is known, even before selection
                reselect(subnet, before: before, now: now, into: &actions)
            }
            return
        }

        if let i = routes[at: slot].index(of: n) {
            // 5. The neighbour already announced it.
            let isSelected = routes[at: slot].selected == n
            let stored = routes[at: slot].entries[i]
            // (An unfeasible Update is finite, so it carries the owner's key, as `stored` does.)
            if isSelected, !feasible, stored.routerIdTail == u.routerId.tail {
                sendSeqNoRequest(subnet, routerId: u.routerId, to: [n], now: now, into: &actions)
                return
            }
            if stored.metric.isInfinite, u.isRetraction { return }
            routes[at: slot].entries[i].seqno = u.seqno
            routes[at: slot].entries[i].metric = u.metric
            // A retraction carries its sender's router id, not the owner's: the entry keeps the
            // id it had (Rust stores the sender's; nothing but a SeqNoRequest for the subnet
            // reads it, and that must name the owner's id to be answered).
            if !u.isRetraction { routes[at: slot].entries[i].routerIdTail = u.routerId.tail }
            if feasible {
                routes[at: slot].entries[i].expires = expires
                noteRouteExpiry(expires)
            } else if !isSelected {
                return
            } else {
                routes[at: slot].selected = nil
            }
        } else {
            // 6. A new neighbour for a known subnet. A retraction from a neighbour that never
            // announced the subnet is ignored: retractions only ever touch the sender's own
            // entry, so a forged retraction from a non-next-hop cannot poison a route.
            if u.isRetraction || !feasible {
                if !feasible, routes[at: slot].selected == nil {
                    sendSeqNoRequest(subnet, routerId: u.routerId, to: [n], now: now, into: &actions)
                }
                return
            }
            if let refusal = refusalOfNewEntry(from: n, newSubnet: false) {
                stats.limitsHit += 1
                actions.append(.refused(n, refusal))
                return
            }
            routes[at: slot].entries.append(entry)
            neighbours[existing: n].routeCount += 1
            noteRouteExpiry(expires)
        }
        reselect(subnet, before: before, slot: slot, now: now, into: &actions)
    }

    /// Whether a new route entry from `n` would pass the table's caps.
    func refusalOfNewEntry(from n: NeighbourId, newSubnet: Bool) -> Refusal? {
        if (neighbours.contains(n) ? neighbours[existing: n].routeCount : 0) >= RouterLimits.routesPerNeighbour { return .routesPerNeighbour }
        if newSubnet, routes.count >= RouterLimits.subnets { return .subnets }
        return nil
    }

    mutating func ownerAddress(of key: PublicKey) -> IPv6Address {
        if let known = ownerAddresses[key] { return known }
        if ownerAddresses.count >= ownerCacheLimit { ownerAddresses.removeAll(keepingCapacity: true) }
        let address = key.overlayAddress
        ownerAddresses[key] = address
        return address
    }

    /// The selected route of `subnet`, if any.
    func selection(of subnet: Subnet) -> Selection? {
        routes.index(forKey: subnet).flatMap { selection(at: $0) }
    }

    /// The selected route of the subnet at `slot` of `routes`.
    func selection(at slot: SubnetTable<SubnetRoutes>.Slot) -> Selection? {
        guard let sel = routes[at: slot].selectedEntry, let cost = neighbours.linkCost(of: sel.neighbour), !sel.metric.isInfinite else {
            return nil
        }
        return Selection(neighbour: sel.neighbour, routerId: fullRouterId(of: sel, in: routes[at: slot]), seqno: sel.seqno,
                         metric: sel.metric + cost, expires: sel.expires)
    }

    // MARK: - route selection (spec §5.8) and triggered updates (§5.6 steps 7–9)

    /// Re-runs selection for `subnet` and reports what changed since `before`.
    /// `slot`, when the caller has it, is the subnet's index in `routes` (saves a lookup).
    mutating func reselect(_ subnet: Subnet, before: Selection?, slot known: SubnetTable<SubnetRoutes>.Slot? = nil, now: Instant,
                           into actions: inout [RouterAction]) {
        var after: Selection?
        if let slot = known ?? routes.index(forKey: subnet) {
            // In place: copying the entry out and back would copy its array on every Update.
            let awaited = seqnoRequests.count > 0 ? awaitedSeqnos(subnet, at: slot) : []
            let ownerKey = owners[routes[at: slot].owner]
            Router.choose(&routes[at: slot], ownerKey: ownerKey, subnet: subnet, neighbours: neighbours, sources: sources, awaited: awaited)
            if routes[at: slot].entries.isEmpty {
                routes.remove(at: slot)
                tableDirty = true
            } else {
                after = selection(at: slot)
            }
        }
        if before != after { tableDirty = true }
        switch (before, after) {
        case (nil, nil):
            return
        case let (nil, new?):
            selectedCount += 1
            stats.routeSelections += 1
            queried[subnet] = nil
            if !lostRoutes.isEmpty { lostRoutes[subnet] = nil }
            triggeredUpdate(subnet, selection: new, now: now, into: &actions)
            actions.append(.routeAcquired(subnet))
        case let (old?, nil):
            selectedCount -= 1
            stats.routesLost += 1
            if lostRoutes[subnet] != nil || lostRoutes.count < RouterLimits.pendingQueries {
                let first = now + RouterTuning.lostRouteRetryBaseMs
                lostRoutes[subnet] = LostRoute(routerId: old.routerId, next: first)
                noteRetry(first)
            } else {
                stats.limitsHit += 1
            }
            // Ask everyone who announced it for a fresher route, and withdraw ours.
            if let r = routes[subnet] {
                let targets = r.entries.map(\.neighbour).filter { neighbours.contains($0) }
                let recent = targets.filter { t in
                    seqnoRequests.lastAsked(routerId: old.routerId, prefix: subnet, neighbour: t).map { now - $0 < ProtocolConstants.seqnoBumpTimeoutMs } ?? false
                }
                sendSeqNoRequest(subnet, routerId: old.routerId, to: targets.filter { !recent.contains($0) }, now: now, into: &actions)
            }
            sendRetraction(subnet, now: now, into: &actions)
            // Beyond Rust: also look for the subnet anew, as Rust does only once a packet needs
            // it. Without this a lost route stays lost until traffic asks, and when the nodes
            // that announced it all lost it too (the usual case after a link cut: retractions
            // cascade along the old path) nobody is left to ask with a SeqNoRequest. Under the
            // lost-route budget, as the retries are: a peer that carried thousands of routes
            // and left would otherwise have us send a RouteRequest for each to every neighbour
            // at once, each forwarded through the whole network; over the budget, the retry
            // above asks 5 s later, still budgeted.
            if queried[subnet].map({ $0 <= now }) ?? true {
                if retryBudget.take(now: now.milliseconds) {
                    markQueried(subnet, now: now)
                    sendRouteRequest(subnet, generation: 0, to: neighbourIds, now: now, into: &actions)
                } else {
                    stats.limitsHit += 1
                }
            }
            actions.append(.routeLost(subnet))
        case let (old?, new?):
            if old.neighbour != new.neighbour { stats.routeSelections += 1 }
            let delta = abs(Int(old.metric.rawValue) - Int(new.metric.rawValue))
            if old.routerId != new.routerId || delta > ProtocolConstants.bigMetricChange {
                triggeredUpdate(subnet, selection: new, now: now, into: &actions)
                return
            }
        }
        // No triggered update: answer whoever asked us for this route via a SeqNoRequest.
        if let sel = after {
            let waiting = seqnoRequests.takeRequesters(routerId: sel.routerId, prefix: subnet, seqno: sel.seqno)
            let targets = waiting.filter { $0 != sel.neighbour && neighbours.contains($0) }.sorted()
            if !targets.isEmpty { sendSelectedUpdate(subnet, to: targets, now: now, into: &actions) }
        }
    }

    /// (router id, seqno) pairs that neighbours wait for through SeqNoRequests we forwarded,
    /// for the router ids the subnet at `slot` has entries of. Empty (and cheap) when nobody waits.
    func awaitedSeqnos(_ subnet: Subnet, at slot: SubnetTable<SubnetRoutes>.Slot) -> [(RouterId, SeqNo)] {
        guard seqnoRequests.count > 0 else { return [] }
        var awaited: [(RouterId, SeqNo)] = []
        for e in routes[at: slot].entries {
            let id = fullRouterId(of: e, in: routes[at: slot])
            if awaited.contains(where: { $0.0 == id }) { continue }
            if let s = seqnoRequests.awaitedSeqno(routerId: id, prefix: subnet) { awaited.append((id, s)) }
        }
        return awaited
    }

    /// Picks the selected entry: the feasible finite candidate with the lowest total metric,
    /// switching away from a live selection only for an improvement of more than 10 or for the
    /// subnet's owner itself (metric 0).
    ///
    /// Beyond Rust: when neighbours wait for a newer seqno (`awaited`) that the selection lacks
    /// and a feasible entry carries it, the best such entry is selected whatever its metric.
    /// The answer to a SeqNoRequest travels back only along selected routes (§5.6 step 8); a
    /// node whose old-seqno route is still feasible for itself would otherwise keep it, never
    /// answer, and leave every node behind it without a route (seen after link cuts in the
    /// soak suite and the simulator: routes lost for good). A newer seqno is feasible, so the
    /// switch keeps the loop-freedom invariant.
    private static func choose(_ r: inout SubnetRoutes, ownerKey: PublicKey, subnet: Subnet, neighbours: NeighbourTable, sources: SourceTable,
                               awaited: [(RouterId, SeqNo)]) {
        var best: (index: Int, total: Metric)?
        var bestAnswer: (index: Int, total: Metric)?
        let sourceSlot = sources.slot(of: subnet)
        func answers(_ e: RouteEntry) -> Bool {
            awaited.contains { $0.0.tail == e.routerIdTail && $0.0.publicKey == ownerKey && !e.seqno.isLess(than: $0.1) }
        }
        for (i, e) in r.entries.enumerated() where !e.metric.isInfinite {
            guard let cost = neighbours.linkCost(of: e.neighbour),
                  SourceTable.isFeasible(sources.distance(at: sourceSlot, routerId: RouterId(publicKey: ownerKey, tail: e.routerIdTail)), seqno: e.seqno,
                                         metric: e.metric) else { continue }
            let total = e.metric + cost
            if total.isInfinite { continue }
            if !awaited.isEmpty, answers(e),
               bestAnswer.map({ ($0.total, r.entries[$0.index].neighbour) > (total, e.neighbour) }) ?? true {
                bestAnswer = (i, total)
            }
            if let b = best, (b.total, r.entries[b.index].neighbour) <= (total, e.neighbour) { continue }
            best = (i, total)
        }
        if let answer = bestAnswer {
            let current = r.selected.flatMap { r.index(of: $0) }.map { r.entries[$0] }
            if current.map({ $0.metric.isInfinite || !answers($0) }) ?? true {
                r.selected = r.entries[answer.index].neighbour
                return
            }
        }
        guard let currentId = r.selected, let ci = r.index(of: currentId), !r.entries[ci].metric.isInfinite,
              let currentCost = neighbours.linkCost(of: currentId) else {
            r.selected = best.map { r.entries[$0.index].neighbour }
            return
        }
        // A live selection is kept (even if no longer feasible: Rust does not re-check it here).
        guard let best, r.entries[best.index].neighbour != currentId else { return }
        let currentTotal = r.entries[ci].metric + currentCost
        let improvement = Int(currentTotal.rawValue) - Int(best.total.rawValue)
        if improvement > ProtocolConstants.significantMetricImprovement || r.entries[best.index].metric == .zero {
            r.selected = r.entries[best.index].neighbour
        }
    }

    // MARK: - sending Updates

    /// Our own /64: metric 0, our router id and seqno (spec §5.9).
    mutating func sendOwnUpdate(to targets: [NeighbourId], now: Instant, into actions: inout [RouterAction]) {
        guard !targets.isEmpty else { return }
        let update = Update(interval: ProtocolConstants.updateIntervalCs, seqno: seqno, metric: .zero,
                            subnet: localSubnet, routerId: routerId)
        sources.recordSent(subnet: localSubnet, routerId: routerId, seqno: seqno, metric: .zero, now: now)
        for t in targets { actions.append(.send(.update(update), to: t)) }
    }

    /// The selected route of `subnet` as we advertise it: its metric plus the next hop's cost.
    /// `known` is the subnet's current selection when the caller has just computed it.
    mutating func sendSelectedUpdate(_ subnet: Subnet, selection known: Selection? = nil, to targets: some Collection<NeighbourId>,
                                     now: Instant, into actions: inout [RouterAction]) {
        guard let sel = known ?? selection(of: subnet), !targets.isEmpty else { return }
        let update = Update(interval: ProtocolConstants.updateIntervalCs, seqno: sel.seqno, metric: sel.metric,
                            subnet: subnet, routerId: sel.routerId)
        sources.recordSent(subnet: subnet, routerId: sel.routerId, seqno: sel.seqno, metric: sel.metric, now: now)
        for t in targets { actions.append(.send(.update(update), to: t)) }
    }

    /// Sends the selected route to every neighbour but its next hop (never back where it came from).
    /// The targets are filtered lazily, not gathered into a list: this runs on every route change.
    mutating func triggeredUpdate(_ subnet: Subnet, selection: Selection, now: Instant, into actions: inout [RouterAction]) {
        stats.triggeredUpdates += 1
        sendSelectedUpdate(subnet, selection: selection, to: neighbours.ids.lazy.filter { $0 != selection.neighbour },
                           now: now, into: &actions)
    }

    /// A retraction of a lost route. Rust: retractions carry the *sender's* router id and seqno
    /// (spec §5.9); receivers match them by neighbour, so we do the same for compatibility.
    mutating func sendRetraction(_ subnet: Subnet, now: Instant, into actions: inout [RouterAction]) {
        let targets = neighbourIds
        guard !targets.isEmpty else { return }
        stats.triggeredUpdates += 1
        let update = Update(interval: ProtocolConstants.updateIntervalCs, seqno: seqno, metric: .infinite,
                            subnet: subnet, routerId: routerId)
        sources.recordSent(subnet: subnet, routerId: routerId, seqno: seqno, metric: .infinite, now: now)
        for t in targets { actions.append(.send(.update(update), to: t)) }
    }

    mutating func noteRouteExpiry(_ t: Instant) {
        if let e = earliestRouteExpiry, e <= t { return }
        earliestRouteExpiry = t
    }
}

public import MyceliumNode
import MyceliumDatapath
import CoreMetrics
import Prometheus
import Synchronization

/// The node's counters as Prometheus metrics, through swift-metrics.
///
/// The datapath and the router keep plain integers on their loop (no atomics or locks per
/// packet); at each scrape we take one snapshot of them and advance the swift-metrics counters
/// by the difference since the previous scrape, then render the registry. Names follow Rust
/// Mycelium (spec §11) where the same thing is counted; `mycelium_datapath_*` and the gauges are
/// ours. docs/api.md lists them.
public final class NodeMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let counters: [(CoreMetrics.Counter, @Sendable (NodeCounters) -> UInt64)]
    private let gauges: [(CoreMetrics.Gauge, @Sendable (NodeCounters) -> Int)]
    private let knownPeers: CoreMetrics.Gauge
    private let last: Mutex<[UInt64]>

    private static func u(_ v: Int) -> UInt64 { UInt64(max(0, v)) }

    public init() {
        let factory = PrometheusMetricsFactory(registry: registry)
        func counter(_ name: String, _ dims: [(String, String)] = [], _ read: @escaping @Sendable (NodeCounters) -> UInt64)
            -> (CoreMetrics.Counter, @Sendable (NodeCounters) -> UInt64) {
            (CoreMetrics.Counter(label: name, dimensions: dims, factory: factory), read)
        }
        counters = [
            counter("mycelium_router_processed_tlvs", [("tlv_type", "hello")]) { Self.u($0.router.hellosReceived) },
            counter("mycelium_router_processed_tlvs", [("tlv_type", "ihu")]) { Self.u($0.router.ihusReceived) },
            counter("mycelium_router_processed_tlvs", [("tlv_type", "update")]) { Self.u($0.router.updatesReceived) },
            counter("mycelium_router_processed_tlvs", [("tlv_type", "route_request")]) { Self.u($0.router.routeRequestsReceived) },
            counter("mycelium_router_processed_tlvs", [("tlv_type", "wildcard_route_request")]) { Self.u($0.router.wildcardRouteRequestsReceived) },
            counter("mycelium_router_processed_tlvs", [("tlv_type", "seqno_request")]) { Self.u($0.router.seqnoRequestsReceived) },
            counter("mycelium_router_received_tlvs") { s in
                let r = s.router
                return Self.u(r.hellosReceived + r.ihusReceived + r.updatesReceived + r.routeRequestsReceived
                    + r.wildcardRouteRequestsReceived + r.seqnoRequestsReceived)
            },
            counter("mycelium_router_tlv_discarded") { Self.u($0.router.tlvsDiscarded) },
            counter("mycelium_router_input_dropped") { UInt64($0.routerInputDropped) },
            counter("mycelium_router_update_denied") { Self.u($0.router.updatesDenied) },
            counter("mycelium_router_peer_added") { Self.u($0.router.peersAdded) },
            counter("mycelium_router_peer_removed") { Self.u($0.router.peersRemoved) },
            counter("mycelium_router_peer_died") { Self.u($0.router.peersDied) },
            counter("mycelium_router_route_selections") { Self.u($0.router.routeSelections) },
            counter("mycelium_router_source_key_expired") { Self.u($0.router.sourceKeysExpired) },
            counter("mycelium_router_expired_routes", [("action", "removed")]) { Self.u($0.router.expiredRoutesRemoved) },
            counter("mycelium_router_expired_routes", [("action", "retracted")]) { Self.u($0.router.expiredRoutesRetracted) },
            counter("mycelium_router_triggered_updates") { Self.u($0.router.triggeredUpdates) },
            counter("mycelium_router_lost_route_retries") { Self.u($0.router.lostRouteRetries) },
            counter("mycelium_router_owner_pool_compactions") { Self.u($0.router.ownerPoolCompactions) },
            counter("mycelium_router_seqno_handling", [("action", "reply_local")]) { Self.u($0.router.seqnoRepliesLocal) },
            counter("mycelium_router_seqno_handling", [("action", "bump_seqno")]) { Self.u($0.router.seqnoBumps) },
            counter("mycelium_router_seqno_handling", [("action", "forward")]) { Self.u($0.router.seqnoForwarded) },
            counter("mycelium_router_seqno_handling", [("action", "dropped")]) { Self.u($0.router.seqnoDropped) },
            counter("mycelium_router_packets_routed", [("verdict", "local")]) { $0.datapath.delivered },
            counter("mycelium_router_packets_routed", [("verdict", "forward")]) { $0.datapath.peerPacketsOut },
            counter("mycelium_router_packets_routed", [("verdict", "ttl_expired")]) { $0.datapath.droppedHopLimit },
            counter("mycelium_router_packets_routed", [("verdict", "no_route")]) { $0.datapath.droppedNoRoute },
            counter("mycelium_router_outbound_packet_queue", [("event", "enqueued")]) { $0.datapath.queued },
            counter("mycelium_router_outbound_packet_queue", [("event", "queue_full")]) { $0.datapath.droppedQueueFull },
            counter("mycelium_datapath_packets", [("direction", "tun_in")]) { $0.datapath.tunPacketsIn },
            counter("mycelium_datapath_packets", [("direction", "tun_out")]) { $0.datapath.tunPacketsOut },
            counter("mycelium_datapath_packets", [("direction", "peer_in")]) { $0.datapath.peerPacketsIn },
            counter("mycelium_datapath_packets", [("direction", "peer_out")]) { $0.datapath.peerPacketsOut },
            counter("mycelium_datapath_bytes", [("direction", "tun_in")]) { $0.datapath.tunBytesIn },
            counter("mycelium_datapath_bytes", [("direction", "tun_out")]) { $0.datapath.tunBytesOut },
            counter("mycelium_datapath_dropped", [("reason", "malformed")]) { $0.datapath.droppedMalformed },
            counter("mycelium_datapath_dropped", [("reason", "no_route")]) { $0.datapath.droppedNoRoute },
            counter("mycelium_datapath_dropped", [("reason", "no_key")]) { $0.datapath.droppedNoKey },
            counter("mycelium_datapath_dropped", [("reason", "hop_limit")]) { $0.datapath.droppedHopLimit },
            counter("mycelium_datapath_dropped", [("reason", "queue_full")]) { $0.datapath.droppedQueueFull },
            counter("mycelium_datapath_dropped", [("reason", "tun_full")]) { $0.datapath.droppedTunFull },
            counter("mycelium_datapath_dropped", [("reason", "no_tun")]) { $0.datapath.droppedNoTun },
            counter("mycelium_datapath_dropped", [("reason", "unroutable")]) { $0.datapath.droppedUnroutable },
            counter("mycelium_datapath_dropped", [("reason", "spoofed")]) { $0.datapath.droppedSpoofed },
            counter("mycelium_datapath_dropped", [("reason", "peer_busy")]) { $0.datapath.droppedPeerBusy },
            counter("mycelium_datapath_dropped", [("reason", "tun_backlog")]) { $0.datapath.droppedTunBacklog },
            counter("mycelium_datapath_icmp_rate_limited") { $0.datapath.icmpRateLimited },
            counter("mycelium_datapath_offload", [("event", "split")]) { $0.datapath.tunSuperPacketsIn },
            counter("mycelium_datapath_offload", [("event", "coalesced")]) { $0.datapath.tunSegmentsCoalesced },
            counter("mycelium_datapath_cipher_evictions") { $0.datapath.cipherEvictions },
            counter("mycelium_datapath_buffer_allocations") { $0.datapath.bufferAllocations },
            counter("mycelium_datapath_decrypt_failures") { $0.datapath.decryptFailures },
            counter("mycelium_datapath_dropped", [("reason", "replay")]) { $0.datapath.replaysDropped + $0.datapath.sessions.replays },
            counter("mycelium_datapath_dropped", [("reason", "downgrade")]) { $0.datapath.downgradesRefused },
            counter("mycelium_datapath_dropped", [("reason", "no_session")]) { $0.datapath.droppedNoSession },
            counter("mycelium_datapath_dropped", [("reason", "sessions_off")]) { $0.datapath.sessionMessagesIgnored },
            counter("mycelium_session_handshakes", [("event", "init_sent")]) { $0.datapath.sessions.initsSent },
            counter("mycelium_session_handshakes", [("event", "response_sent")]) { $0.datapath.sessions.responsesSent },
            counter("mycelium_session_handshakes", [("event", "established")]) { $0.datapath.sessions.established },
            counter("mycelium_session_handshakes", [("event", "refused")]) { $0.datapath.sessions.handshakesRefused },
            counter("mycelium_session_handshakes", [("event", "crossed")]) { $0.datapath.sessions.crossed },
            counter("mycelium_session_handshakes", [("event", "rate_limited")]) { $0.datapath.sessions.rateLimited },
            counter("mycelium_session_rekeys") { $0.datapath.sessions.rekeys },
            counter("mycelium_session_fallbacks") { $0.datapath.sessions.fallbacks },
            counter("mycelium_session_keys_erased") { $0.datapath.sessions.erased },
            counter("mycelium_router_tlv_rate_limited") { Self.u($0.router.tlvsRateLimited) },
            counter("mycelium_router_limit_hit") { Self.u($0.router.limitsHit) },
            counter("mycelium_peers_refused", [("reason", "inbound_limit")]) { $0.inboundRefused },
            counter("mycelium_peers_refused", [("reason", "discovery_limit")]) { $0.discoveryRefused },
            counter("mycelium_discovery_beacons", [("event", "sent")]) { $0.discovery.beaconsSent },
            counter("mycelium_discovery_beacons", [("event", "received")]) { $0.discovery.beaconsReceived },
            counter("mycelium_discovery_beacons", [("event", "dropped")]) { $0.discovery.beaconsDropped },
            counter("mycelium_discovery_rescans") { $0.discovery.rescans },
            counter("mycelium_tls_failures") { $0.tlsFailures },
            counter("mycelium_key_proofs", [("event", "answered")]) { $0.keyProofs.answered },
            counter("mycelium_key_proofs", [("event", "verified")]) { $0.keyProofs.verified },
            counter("mycelium_key_proofs", [("event", "failed")]) { $0.keyProofs.failed },
            counter("mycelium_key_proofs", [("event", "dropped")]) { $0.keyProofs.dropped },
            counter("mycelium_key_proofs", [("event", "discarded")]) { $0.keyProofs.discarded },
            counter("mycelium_quic_dropped", [("reason", "malformed")]) { Self.u($0.quic.malformed) },
            counter("mycelium_quic_dropped", [("reason", "unknown_connection")]) { Self.u($0.quic.unknownConnection) },
            counter("mycelium_quic_dropped", [("reason", "handshake_limit")]) { Self.u($0.quic.handshakesRefused) },
            counter("mycelium_quic_dropped", [("reason", "initial_rejected")]) { Self.u($0.quic.initialsRejected) },
            counter("mycelium_quic_dropped", [("reason", "bad_datagram")]) { Self.u($0.quic.datagramsMalformed) },
            counter("mycelium_quic_dropped", [("reason", "datagram_not_sent")]) { Self.u($0.quic.datagramsDropped) },
            counter("mycelium_quic_timeouts", [("phase", "handshake_or_idle")]) { Self.u($0.quic.timeouts) },
            counter("mycelium_quic_timeouts", [("phase", "stream")]) { Self.u($0.quic.streamTimeouts) },
            counter("mycelium_quic_stateless_resets") { Self.u($0.quic.statelessResetsSent) },
            counter("mycelium_peer_dns_lookups", [("result", "answered")]) { $0.peerDNS.lookups - $0.peerDNS.failures },
            counter("mycelium_peer_dns_lookups", [("result", "failed")]) { $0.peerDNS.failures },
            counter("mycelium_peer_dns_refused") { $0.peerDNS.refused },
            counter("mycelium_messages", [("event", "sent")]) { $0.messages.sent },
            counter("mycelium_messages", [("event", "delivered")]) { $0.messages.delivered },
            counter("mycelium_messages", [("event", "received")]) { $0.messages.received },
            counter("mycelium_messages", [("event", "forwarded")]) { $0.messages.forwarded },
            counter("mycelium_messages", [("event", "expired")]) { $0.messages.expired },
            counter("mycelium_messages_retransmitted") { $0.messages.retransmitted },
            counter("mycelium_messages_refused", [("reason", "push")]) { $0.messages.refusedPush },
            counter("mycelium_messages_refused", [("reason", "topic")]) { $0.messages.refusedTopic },
            counter("mycelium_messages_refused", [("reason", "full")]) { $0.messages.refusedFull },
            counter("mycelium_messages_dropped", [("reason", "malformed")]) { $0.messages.malformed },
            counter("mycelium_messages_dropped", [("reason", "corrupt")]) { $0.messages.corrupt },
            counter("mycelium_messages_dropped", [("reason", "no_route")]) { $0.datapath.messagesNoRoute },
        ]
        gauges = [
            (CoreMetrics.Gauge(label: "mycelium_peers_alive", factory: factory), { @Sendable in $0.connectedPeers }),
            (CoreMetrics.Gauge(label: "mycelium_routes_selected", factory: factory), { @Sendable in $0.selectedRoutes }),
            (CoreMetrics.Gauge(label: "mycelium_datapath_queued_packets", factory: factory), { @Sendable in $0.queuedPackets }),
            (CoreMetrics.Gauge(label: "mycelium_sessions_up", factory: factory), { @Sendable in $0.datapath.sessionsUp }),
            (CoreMetrics.Gauge(label: "mycelium_datapath_buffers_pooled", factory: factory), { @Sendable in $0.datapath.buffersPooled }),
            (CoreMetrics.Gauge(label: "mycelium_replay_filter_senders", factory: factory), { @Sendable in $0.datapath.replaySenders }),
            (CoreMetrics.Gauge(label: "mycelium_replay_filter_nonces", factory: factory), { @Sendable in $0.datapath.replayFingerprints }),
            (CoreMetrics.Gauge(label: "mycelium_discovery_interfaces", factory: factory), { @Sendable in $0.discovery.interfacesJoined }),
            (CoreMetrics.Gauge(label: "mycelium_peer_dns_endpoints", factory: factory), { @Sendable in $0.peerDNSEndpoints }),
            (CoreMetrics.Gauge(label: "mycelium_messages_inbox", factory: factory), { @Sendable in $0.inboxMessages }),
            (CoreMetrics.Gauge(label: "mycelium_messages_inbox_bytes", factory: factory), { @Sendable in $0.inboxBytes }),
        ]
        knownPeers = CoreMetrics.Gauge(label: "mycelium_peer_manager_known_peers", factory: factory)
        last = Mutex([UInt64](repeating: 0, count: counters.count))
    }

    /// Brings the metrics up to date with `snapshot` (and the peer list's size).
    public func update(_ snapshot: NodeCounters, knownPeers known: Int) {
        last.withLock { last in
            for (i, (counter, read)) in counters.enumerated() {
                let value = read(snapshot)
                if value > last[i] { counter.increment(by: Int64(value - last[i])) }
                last[i] = max(last[i], value)
            }
        }
        for (gauge, read) in gauges { gauge.record(read(snapshot)) }
        knownPeers.record(known)
    }

    /// The Prometheus text exposition of everything recorded so far.
    public func render() -> String {
        registry.emitToString()
    }

    /// Scrapes `node` and renders: what `GET /metrics` answers.
    public func scrape(_ node: Node) async -> String {
        if let snapshot = await node.counters() {
            update(snapshot, knownPeers: await node.peers?.peers().count ?? 0)
        }
        return render()
    }
}

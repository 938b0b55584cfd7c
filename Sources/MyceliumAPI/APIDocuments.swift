public import MyceliumCore
public import MyceliumNode
public import MyceliumDatapath

/// The JSON bodies of the REST API, field for field as Rust Mycelium v0.7.10 writes them
/// (spec §9): camelCase, members in Rust's declaration order, compact.
public enum APIDocuments {
    /// `GET /api/v1/admin`.
    /// `cniAttachments` (ours) is added after Rust's fields when the CNI agent runs.
    public static func info(subnet: Subnet, address: IPv6Address, publicKey: PublicKey, startTime: Int64,
                            cniAttachments: Int? = nil) -> JSON {
        .object([
            ("nodeSubnet", .string(subnet.description)),
            ("nodeIp", .string(address.description)),
            ("nodePubkey", .string(publicKey.hex)),
            ("nodeStartTime", .int(startTime)),
        ] + (cniAttachments.map { [("cniAttachments", JSON.int($0))] } ?? []))
    }

    /// The `Endpoint` object (v0.7.6+): `{"proto":"tcp","addr":{"socket":"1.2.3.4:9651"}}`.
    public static func endpoint(_ e: Endpoint) -> JSON {
        .object([("proto", .string(e.proto.rawValue)), ("addr", .object([("socket", .string(e.socketAddress))]))])
    }

    /// One `PeerStats`; times are seconds before `now` (monotonic milliseconds).
    /// `pinnedKey` (ours) follows Rust's fields when the endpoint pins the peer's key.
    public static func peer(_ p: PeerManager.PeerInfo, nowMs: Int64) -> JSON {
        .object([
            ("endpoint", endpoint(p.endpoint)),
            ("type", .string(p.type.rawValue)),
            ("connectionState", .string(p.state.rawValue)),
            ("txBytes", .int(p.txBytes)),
            ("rxBytes", .int(p.rxBytes)),
            ("discovered", .int(max(0, nowMs - p.discovered.milliseconds) / 1000)),
            ("lastConnected", p.lastConnected.map { .int(max(0, nowMs - $0.milliseconds) / 1000) } ?? .null),
        ] + (p.endpoint.key.map { [("pinnedKey", JSON.string($0.hex))] } ?? []))
    }

    /// One `Route`; the metric is a number, or the string "infinite" for a retraction.
    public static func route(_ r: RouteView) -> JSON {
        .object([
            ("subnet", .string(r.subnet.description)),
            ("nextHop", .string(r.nextHop)),
            ("metric", r.metric.isInfinite ? .string("infinite") : .int(r.metric.rawValue)),
            ("seqno", .int(r.seqno)),
        ])
    }

    /// One queried subnet; Rust sends the seconds left as a string.
    public static func queried(subnet: Subnet, secondsLeft: Int64) -> JSON {
        .object([("subnet", .string(subnet.description)), ("expiration", .string(String(max(0, secondsLeft))))])
    }

    /// `GET /api/v1/admin/stats/packets`: busiest addresses first.
    public static func packetStats(_ t: TrafficCounters) -> JSON {
        func list(_ table: [IPv6Address: TrafficCounters.Count]) -> JSON {
            .array(table.sorted { ($0.value.packets, $1.key) > ($1.value.packets, $0.key) }.map { ip, count in
                .object([("ip", .string(ip.description)), ("packetCount", .int(count.packets)), ("byteCount", .int(count.bytes))])
            })
        }
        return .object([("bySource", list(t.bySource)), ("byDestination", list(t.byDestination))])
    }

    /// One entry of `GET /api/v1/admin/sessions` (ours; Rust has no sessions).
    public static func session(_ v: SessionTable.PeerView) -> JSON {
        func seconds(_ ms: Int64?) -> JSON { ms.map { .int(max(0, $0) / 1000) } ?? .null }
        return .object([
            ("publicKey", .string(v.peer.hex)),
            ("address", .string(v.peer.overlayAddress.description)),
            ("state", .string(v.state.rawValue)),
            ("capable", .bool(v.capable)),
            ("initiator", v.initiator.map(JSON.bool) ?? .null),
            ("ageSeconds", seconds(v.ageMs)),
            ("packetsSent", v.packetsSent.map { .int($0) } ?? .null),
            ("lastReceivedSecondsAgo", seconds(v.lastReceivedMs)),
            ("fallbackSecondsLeft", .int(max(0, v.fallbackLeftMs) / 1000)),
        ])
    }

    public static func publicKey(_ key: PublicKey) -> JSON {
        .object([("publicKey", .string(key.hex))])
    }

    /// `MessageReceiveInfo`: the topic is left out when empty, as Rust does.
    public static func receivedMessage(_ m: ReceivedMessage) -> JSON {
        var members: [(String, JSON)] = [
            ("id", .string(APIServer.hexId(m.id))),
            ("srcIp", .string(m.source.description)),
            ("srcPk", .string(m.sourceKey.hex)),
            ("dstIp", .string(m.destination.description)),
            ("dstPk", .string(m.destinationKey.hex)),
        ]
        if !m.topic.isEmpty { members.append(("topic", .string(Base64.encode(m.topic)))) }
        members.append(("payload", .string(Base64.encode(m.data))))
        return .object(members)
    }

    /// `MessageInfo`: the state is a string, or `{"sending": {…}}` while chunks are in flight.
    public static func messageInfo(_ s: MessageStatus, created: Int64, deadline: Int64) -> JSON {
        let state: JSON
        switch s.state {
        case .pending: state = .string("pending")
        case let .sending(pending, sent, acked):
            state = .object([("sending", .object([("pending", .int(pending)), ("sent", .int(sent)), ("acked", .int(acked))]))])
        case .received: state = .string("received")
        case .read: state = .string("read")
        case .aborted: state = .string("aborted")
        }
        return .object([
            ("dst", .string(s.destination.description)),
            ("state", state),
            ("created", .int(created)),
            ("deadline", .int(deadline)),
            ("msgLen", .int(s.length)),
        ])
    }
}

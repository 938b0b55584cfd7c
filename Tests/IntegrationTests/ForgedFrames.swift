import MyceliumCore

/// Frames a hostile peer would send.
enum ForgedFrames {
    /// An Update for `subnet` announced with a key that does not own it (metric 0, high seqno).
    static func update(claiming subnet: String) -> String {
        let key = PublicKey(bytes: [UInt8](repeating: 0x42, count: 32))!
        let update = Update(interval: 30_000, seqno: SeqNo(9000), metric: .zero, subnet: Subnet(subnet)!,
                            routerId: RouterId(publicKey: key, random: 7))
        return Hex.encode(Packet.control(.update(update)).encode())
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MyceliumCore
import MyceliumCrypto
import MyceliumSystem
import Synchronization

/// A peer that speaks the Mycelium wire protocol correctly and lies: it connects from inside a
/// lab namespace with a blocking socket, has a key of its own (so the victim can open what it
/// seals), and sends whatever frames a test builds: floods, forged Updates, data packets whose
/// inner header contradicts the outer one. Every socket operation has a timeout.
final class HostilePeer: @unchecked Sendable {
    let key = SecretKey.generate()
    lazy var identity = NodeIdentity(secretKey: key)
    lazy var routerId = identity.makeRouterId()
    let fd: Int32
    /// Set once by `drain()` on the test's thread, read in `deinit` there.
    private var drainer: Thread?
    private let stopDraining = Atomic<Bool>(false)

    /// Connects from `namespace` to `[address]:port`; nil if the victim refused or closed.
    init(namespace: String, address: String, port: UInt16 = 9651) throws {
        fd = try NetworkNamespace.run("/var/run/netns/\(namespace)") { () throws -> Int32 in
            let s = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw LabError("socket: \(errno)") }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, address, &sa.sin6_addr) == 1 else { throw LabError("bad address \(address)") }
            let rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            guard rc == 0 else {
                close(s)
                throw LabError("connect to [\(address)]:\(port) from \(namespace): errno \(errno)")
            }
            return s
        }
    }

    deinit {
        stopDraining.store(true, ordering: .relaxed)
        shutdown(fd, Int32(SHUT_RDWR))
        if let t = drainer {
            for _ in 0..<500 where !t.isFinished { usleep(10_000) }  // bounded: 5 s
        }
        close(fd)
    }

    /// Reads and discards what the victim sends (an honest-looking peer), on a thread of its own.
    func drain() {
        let t = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !stopDraining.load(ordering: .relaxed) {
                let n = read(fd, &buffer, buffer.count)
                if n == 0 { return }
                if n < 0, errno != EAGAIN, errno != EINTR { return }
            }
        }
        drainer = t
        t.start()
    }

    /// Writes every frame; false once the victim has closed the connection.
    @discardableResult
    func send(_ packets: [Packet]) -> Bool {
        var bytes: [UInt8] = []
        for p in packets { p.encode(to: &bytes) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    @discardableResult
    func send(_ tlv: ControlTLV) -> Bool { send([.control(tlv)]) }

    /// Whether the victim has closed or reset the connection: the kernel's TCP state is no
    /// longer ESTABLISHED (works even with unread data queued, unlike a peek for end of file).
    var isClosedByVictim: Bool {
        var info = [UInt8](repeating: 0, count: 256)
        var length = socklen_t(info.count)
        guard getsockopt(fd, Int32(IPPROTO_TCP), 11 /* TCP_INFO */, &info, &length) == 0 else { return true }
        return info[0] != 1  // tcpi_state: 1 = TCP_ESTABLISHED
    }

    /// Our own /64, announced honestly, so the victim learns our key and can open what we seal.
    func announce(seqno: UInt16 = 1) -> ControlTLV {
        .update(Update(interval: 30_000, seqno: SeqNo(seqno), metric: .zero, subnet: identity.subnet, routerId: routerId))
    }

    /// A data packet from our address to `victim`, sealed with the key we share with it, whose
    /// payload is an ICMPv6 echo request with the inner addresses a test chooses.
    func dataPacket(to victim: PublicKey, innerSource: IPv6Address? = nil, innerDestination: IPv6Address? = nil,
                    outerSource: IPv6Address? = nil) -> Packet {
        let src = innerSource ?? identity.address, dst = innerDestination ?? victim.overlayAddress
        var ipv6: [UInt8] = [0x60, 0, 0, 0, 0, 16, 58, 64] + src.bytes + dst.bytes
        var icmp: [UInt8] = [128, 0, 0, 0, 0x12, 0x34, 0, 1] + Array("hostile!".utf8)
        let sum = Self.icmpChecksum(source: src, destination: dst, message: icmp)
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xFF)
        ipv6 += icmp
        let cipher = PacketCipher(key: key.sharedSecret(with: victim)!)
        let sealed = cipher.seal([1, 0, 0, 0] + ipv6)
        return .data(DataPacket(hopLimit: 64, source: outerSource ?? identity.address, destination: victim.overlayAddress,
                                payload: sealed))
    }

    static func icmpChecksum(source: IPv6Address, destination: IPv6Address, message: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var bytes = source.bytes + destination.bytes + [0, 0, UInt8(message.count >> 8), UInt8(message.count & 0xFF), 0, 0, 0, 58]
        bytes += message
        if bytes.count % 2 == 1 { bytes.append(0) }
        for i in stride(from: 0, to: bytes.count, by: 2) { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

extension NamespaceLab {
    /// The node's Prometheus metrics (it must run with `--metrics-api-address [::1]:PORT`), each
    /// line's name with labels → value.
    func metrics(of namespace: String, port: Int) -> [String: Double] {
        let script = "import urllib.request;print(urllib.request.urlopen('http://[::1]:\(port)/metrics', timeout=5).read().decode())"
        let out = Self.run(["ip", "netns", "exec", namespace, "python3", "-c", script]).output
        var values: [String: Double] = [:]
        for line in out.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = v
        }
        return values
    }

    /// Sends UDP from `namespace` to `address` as fast as Python can for `seconds` (a local
    /// flood into the TUN); the caller terminates it.
    func udpFlood(from namespace: String, to address: IPv6Address, seconds: Int) throws -> Process {
        let script = "import socket,time\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\nend=time.time()+\(seconds)\n"
            + "while time.time()<end:\n  try: s.sendto(b'x'*1200,('\(address)',9))\n  except OSError: time.sleep(0.001)\n"
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sender.arguments = ["ip", "netns", "exec", namespace, "python3", "-c", script]
        sender.standardOutput = FileHandle.nullDevice
        sender.standardError = FileHandle.nullDevice
        try sender.run()
        return sender
    }

    /// Resident memory of the node's process, in KiB.
    func rssKiB(of namespace: String) -> Int {
        guard let node = nodes[namespace],
              let status = try? String(contentsOfFile: "/proc/\(node.process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    func publicKey(of namespace: String) throws -> PublicKey {
        let hex = try inspect(namespace, "publicKey")
        guard let key = PublicKey(hex: hex) else { throw LabError("inspect: '\(hex)' is not a public key") }
        return key
    }
}

import Foundation
import MyceliumTesting
import Testing

/// A full container runtime in the loop: Debian's podman 4.3 with its CNI backend runs our
/// conflist exactly as it runs any CNI network, ADD on start and DEL on removal, while the node
/// and its agent run in a namespace of the test's. Podman and the agent share the machine's
/// mount namespace (`nsenter --net`, not `ip netns exec`), as a runtime and a host agent do, so
/// the agent can open the namespaces podman mounts under /run/netns.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct PodmanTests {
    /// Podman as a shell would start it. Children of the test process inherit its blocked
    /// signals, and every descriptor it did not mark close-on-exec, among them the socket by
    /// which Foundation's `Process` learns that a child has ended. conmon outlives podman for
    /// the container's life and holds on to both, so calls would not return and containers
    /// would not stop. Python (always here: the packaging tests use it) clears the mask and
    /// closes everything above stderr before it execs podman; the output goes through a file.
    static func podman(_ args: [String], output: String, timeout: TimeInterval = 60) -> (status: Int32, output: String) {
        let clean = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
            + "out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(out, 1); os.dup2(out, 2); "
            + "os.closerange(3, 65536); os.execvp(sys.argv[2], sys.argv[2:])"
        let r = Shell.run(["python3", "-c", clean, output] + args, timeout: timeout)
        return (r.status, ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "") + r.output)
    }

    @Test("podman containers on our network get addresses in the node's /64 and ping each other; removal leaves no veth")
    func podmanRunsOurNetwork() throws {
        try #require(Shell.run(["sh", "-c", "command -v podman && command -v runc && test -x /bin/busybox"]).status == 0,
                     "podman, runc and busybox-static are missing: make test installs them (scripts/install-test-tools.sh)")
        let lab = try NamespaceLab()
        let ns = try lab.host("pm")
        let dir = lab.directory
        let runroot = "/run/mycelium-test-podman-\(lab.prefix)"
        defer { _ = Shell.run(["rm", "-rf", runroot]) }

        // A runtime configuration of our own: CNI backend, our plugin and conflist, runc.
        try """
            [network]
            network_backend = "cni"
            cni_plugin_dirs = ["\(dir)/bin", "/usr/lib/cni"]
            network_config_dir = "\(dir)/net.d"
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            """.write(toFile: dir + "/containers.conf", atomically: true, encoding: .utf8)
        let command = ["env", "CONTAINERS_CONF=\(dir)/containers.conf", "nsenter", "--net=/var/run/netns/\(ns)", "podman",
                      "--root", dir + "/storage", "--runroot", runroot, "--tmpdir", runroot + "/tmp", "--storage-driver", "vfs"]
        // The defaults are refused on this VM's cgroup setup (see design/platform-notes.md §8).
        let limits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
        var calls = 0
        func podman(_ args: [String]) -> (status: Int32, output: String) {
            calls += 1
            return Self.podman(command + args, output: "\(dir)/podman-\(calls).out")
        }
        defer { _ = podman(["rm", "-af", "-t", "0"]) }

        let install = Shell.run([NamespaceLab.binary, "install-cni", "--bin-dir", dir + "/bin", "--conf-dir", dir + "/net.d",
                                 "--cni-socket", dir + "/cni.sock"])
        try #require(install.status == 0, "\(install.output)")
        // The smallest image there is: busybox-static, imported, nothing pulled.
        let image = Shell.run(["sh", "-c", "mkdir -p \(dir)/rootfs/bin && cp /bin/busybox \(dir)/rootfs/bin/ && "
                                   + "for a in sh ip ping6 sleep; do ln -sf busybox \(dir)/rootfs/bin/$a; done && "
                                   + "tar -C \(dir)/rootfs -c . | \(command.joined(separator: " ")) import - localhost/mycelium-test-busybox"],
                              timeout: 120)
        try #require(image.status == 0, "\(image.output)")

        let node = Process()
        node.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        node.arguments = ["nsenter", "--net=/var/run/netns/\(ns)", NamespaceLab.binary, "-k", dir + "/node.key", "--cni",
                          "--cni-socket", dir + "/cni.sock", "--state-dir", dir + "/state", "--disable-peer-discovery"]
        let log = dir + "/node.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        node.standardOutput = FileHandle(forWritingAtPath: log)
        node.standardError = FileHandle(forWritingAtPath: log)
        try node.run()
        defer { NamespaceLab.terminate(node) }
        let deadline = Date().addingTimeInterval(10)
        while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("CNI agent ready"), Date() < deadline { usleep(50_000) }
        let subnet = String(try #require(Shell.run([NamespaceLab.binary, "inspect", "-k", dir + "/node.key", "--json"]).output
            .firstMatch(of: /"subnet" *: *"([0-9a-f:]+)::\/64"/)?.output.1))

        let run = podman(["run", "-d", "--name", "c1", "--network", "mycelium"] + limits + ["localhost/mycelium-test-busybox", "sleep", "300"])
        try #require(run.status == 0, "\(run.output)\n\(Shell.run(["cat", log]).output)")
        let address = podman(["inspect", "-f", "{{.NetworkSettings.Networks.mycelium.GlobalIPv6Address}}", "c1"])
            .output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(address.hasPrefix(subnet + ":"), "podman reads our result: \(address) in \(subnet)::/64")

        let ping = podman(["run", "--rm", "--network", "mycelium"] + limits + ["localhost/mycelium-test-busybox", "ping6", "-c", "2", "-W", "2", address])
        #expect(ping.status == 0, "a second container reaches the first: \(ping.output)")

        #expect(podman(["rm", "-f", "-t", "0", "c1"]).status == 0)
        let veths = CNIAgentTests.hostVeths(ns)
        #expect(veths.isEmpty, "podman's DEL removed the host side: \(veths)")
    }
}

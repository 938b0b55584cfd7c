"""The image, built from locally built binaries (`--target runtime-local`) on a bookworm base
made by debootstrap, run as users run it: two containers with NET_ADMIN and /dev/net/tun,
configured only by MYCELIUM_* variables, peer and ping each other over the overlay.

Needs root (a private dockerd, a bridge, nsenter) and Debian's docker.io and debootstrap
(scripts/install-test-tools.sh). The engine uses its own data root, socket and bridge, no
iptables, and is stopped and removed afterwards; nothing is pulled from a registry."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, run, runtime_packages

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                                reason="needs root and /dev/net/tun (CI has them)")

SOCKET = "/run/mycelium-test-docker.sock"
BRIDGE = "myctestdk0"
BRIDGE_ADDRESS = "172.31.251.1/24"
BASE = "local/bookworm-minbase:test"
IMAGE = "mycelium:e2e"
PREFIX = "mycelium-e2e-"


# Debian's client matches Debian's engine; the legacy builder needs no buildx plugin.
CLIENT = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def docker(*args, check=True, timeout=120, stdin=None):
    r = subprocess.run([CLIENT, "-H", f"unix://{SOCKET}", *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "DOCKER_BUILDKIT": "0"}, stdin=stdin)
    if check and r.returncode != 0:
        pytest.fail(f"docker {' '.join(args)}: {r.stdout}{r.stderr}")
    return r


def bootstrap_image(rootfs, tag, include=(), files=()):
    """A bookworm image made offline: debootstrap (minbase, plus `include`), `files` copied in as
    (source, path inside), then `docker import`."""
    r = run(["debootstrap", "--variant=minbase"] + ([f"--include={','.join(include)}"] if include else [])
            + ["bookworm", str(rootfs), "http://deb.debian.org/debian"], timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for source, inside in files:
        shutil.copy2(source, rootfs / inside)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    docker("import", "-", tag, stdin=tar.stdout, timeout=300)
    tar.wait(timeout=60)
    shutil.rmtree(rootfs)
    return tag


def wait(what, predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def engine():
    for binary in ["dockerd", "debootstrap", "nsenter"]:
        if not shutil.which(binary):
            pytest.fail(f"{binary} is missing: run scripts/install-test-tools.sh")
    work = pathlib.Path(tempfile.mkdtemp(prefix="mycelium-docker-", dir="/var/tmp"))
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    log = open(work / "dockerd.log", "w")
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", str(work / "data"), "--exec-root", "/run/mycelium-test-docker", "-H", f"unix://{SOCKET}",
         "--pidfile", "/run/mycelium-test-docker.pid", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
         "-b", BRIDGE, "--storage-driver", "overlay2", "--exec-opt", "native.cgroupdriver=cgroupfs"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait("dockerd", lambda: daemon.poll() is None and docker("version", check=False).returncode == 0, 60)
        # A bookworm base without a registry.
        bootstrap_image(work / "rootfs", BASE)
        yield work
    finally:
        for container in docker("ps", "-aq", "--filter", f"name={PREFIX}", check=False).stdout.split():
            docker("rm", "-f", "-v", container, check=False)
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
        log.close()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        subprocess.run(["umount", "-R", str(work / "data")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def image(engine):
    for binary in ["mycelium", "mycelium-cni"]:
        if not (ROOT / ".build-dist" / binary).exists():
            pytest.fail(f".build-dist/{binary} is missing: run scripts/build-release.sh first (scripts/test-packaging.sh does)")
    # --network host: the runtime stage installs its libraries with apt; this engine has no NAT.
    docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE}", "--target", "runtime-local", "-t", IMAGE,
           str(ROOT), timeout=900)
    return IMAGE


def node(name, *env, volume=None, sysctl=True):
    args = ["run", "-d", "--name", PREFIX + name, "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun"]
    if sysctl:
        args += ["--sysctl", "net.ipv6.conf.all.disable_ipv6=0"]
    if volume:
        args += ["-v", f"{PREFIX}{volume}:/var/lib/mycelium"]
    for variable in env:
        args += ["-e", variable]
    return docker(*args, IMAGE).stdout.strip()


def inspect(name, template):
    return docker("inspect", "-f", template, PREFIX + name).stdout.strip()


def overlay_address(name):
    def address():
        r = docker("exec", PREFIX + name, "mycelium", "inspect", "--json", check=False)
        return json.loads(r.stdout)["address"] if r.returncode == 0 else None
    return wait(f"{name}'s key", address, 30)


def ping(from_name, address):
    """ping6 from inside the container's network namespace (the image has no ping)."""
    pid = inspect(from_name, "{{.State.Pid}}")
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ping", "-6", "-c", "1", "-W", "1", address],
                          capture_output=True, text=True, timeout=10).returncode == 0


def test_two_containers_peer_and_ping_over_the_overlay(image):
    node("a", "MYCELIUM_DISABLE_PEER_DISCOVERY=true", volume="a")
    a_ip = wait("a's IP", lambda: inspect("a", "{{.NetworkSettings.IPAddress}}"), 30)
    node("b", f"MYCELIUM_PEERS=tcp://{a_ip}:9651", "MYCELIUM_DISABLE_PEER_DISCOVERY=true", volume="b")
    a, b = overlay_address("a"), overlay_address("b")
    assert a != b and a.split(":")[0] in {f"{x:x}" for x in range(0x400, 0x600)}
    wait("a to reach b over the overlay", lambda: ping("a", b), 60)
    wait("b to reach a over the overlay", lambda: ping("b", a), 30)
    peers = docker("exec", PREFIX + "a", "mycelium", "peers", "list", "--json").stdout
    assert json.loads(peers)[0]["connectionState"] == "alive", peers
    # The HEALTHCHECK (mycelium healthcheck → /readyz) turns the containers healthy.
    for name in ["a", "b"]:
        wait(f"{name} healthy", lambda name=name: inspect(name, "{{.State.Health.Status}}") == "healthy", 90)

    # A new container on the same volume is the same node: the key is in the declared volume.
    docker("rm", "-f", PREFIX + "b")
    node("b2", f"MYCELIUM_PEERS=tcp://{a_ip}:9651", "MYCELIUM_DISABLE_PEER_DISCOVERY=true", volume="b")
    assert overlay_address("b2") == b
    wait("a to reach the recreated b", lambda: ping("a", b), 60)


def test_bad_configuration_is_one_line_naming_the_variable(image):
    r = docker("run", "--rm", "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun", "-e", "MYCELIUM_TCP_LISTEN_PORT=abc", IMAGE,
               check=False)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "MYCELIUM_TCP_LISTEN_PORT" in r.stderr, r.stderr


def test_ipv6_off_in_the_container_is_explained(image):
    node("noipv6", sysctl=False)
    wait("the node to stop", lambda: inspect("noipv6", "{{.State.Status}}") == "exited", 30)
    logs = docker("logs", PREFIX + "noipv6").stderr
    assert "--sysctl net.ipv6.conf.all.disable_ipv6=0" in logs, logs


def test_install_cni_from_the_image(image, tmp_path):
    r = docker("run", "--rm", "-v", f"{tmp_path}:/host", IMAGE, "install-cni", "--bin-dir", "/host/bin", "--conf-dir", "/host/net.d")
    assert (tmp_path / "bin" / "mycelium-cni").stat().st_size > 1_000_000, r.stdout
    conflist = json.loads((tmp_path / "net.d" / "10-mycelium.conflist").read_text())
    assert conflist["plugins"][0]["type"] == "mycelium-cni"
    # The copied plugin runs on the host: it links no library of the image.
    version = subprocess.run([str(tmp_path / "bin" / "mycelium-cni")], input="", capture_output=True, text=True,
                             env={"CNI_COMMAND": "VERSION"}, timeout=10)
    assert json.loads(version.stdout)["supportedVersions"][-1] == "1.1.0", version


def test_daemonset_like_container_attaches_pods(image, tmp_path):
    """The chart's security context, emulated with Docker: install-cni with every capability
    dropped copies only the plugin into a "host" directory; the node runs with only NET_ADMIN and
    SYS_ADMIN, a read-only root, forwarding set from outside (a read-only /proc/sys) and
    /var/run/netns propagated host-to-container, and its agent writes the conflist into the
    "host" configuration directory once its socket answers. A pod namespace made after the agent
    started is attached by the installed plugin exec'd on the host, as a kubelet's runtime does,
    and reaches another node over the overlay, and is reached from it."""
    bin_dir, conf_dir, socket_dir, state = (tmp_path / d for d in ["bin", "net.d", "run", "state"])
    for d in [bin_dir, conf_dir, socket_dir, state]:
        d.mkdir()
    docker("run", "--rm", "--cap-drop", "ALL", "--read-only", "--security-opt", "no-new-privileges",
           "-v", f"{bin_dir}:/host/cni/bin", IMAGE, "install-cni", "--plugin-only", "--bin-dir=/host/cni/bin")
    assert (bin_dir / "mycelium-cni").exists() and not list(conf_dir.iterdir()), "install-cni copies the plugin only"
    subprocess.run(["ip", "netns", "add", PREFIX + "probe"], check=True)  # makes /var/run/netns a shared mount
    subprocess.run(["ip", "netns", "del", PREFIX + "probe"], check=True)
    # The socket directory has the same path inside and out, as the chart's hostPath has.
    docker("run", "-d", "--name", PREFIX + "agent", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_ADMIN",
           "--read-only", "--security-opt", "no-new-privileges", "--device", "/dev/net/tun",
           "--sysctl", "net.ipv6.conf.all.disable_ipv6=0", "--sysctl", "net.ipv6.conf.all.forwarding=1",
           "-v", f"{state}:/var/lib/mycelium", "-v", f"{socket_dir}:{socket_dir}", "-v", f"{conf_dir}:/host/cni/net.d",
           "--mount", "type=bind,source=/var/run/netns,target=/var/run/netns,bind-propagation=rslave",
           "-e", "MYCELIUM_CNI=true", "-e", f"MYCELIUM_CNI_SOCKET={socket_dir}/cni.sock",
           "-e", "MYCELIUM_CNI_CONFLIST=/host/cni/net.d/10-mycelium.conflist", "-e", "MYCELIUM_DISABLE_PEER_DISCOVERY=true", IMAGE)
    agent_ip = wait("the agent's IP", lambda: inspect("agent", "{{.NetworkSettings.IPAddress}}"), 30)
    node("far", f"MYCELIUM_PEERS=tcp://{agent_ip}:9651", "MYCELIUM_DISABLE_PEER_DISCOVERY=true")
    far = overlay_address("far")
    wait("the agent's conflist", lambda: (conf_dir / "10-mycelium.conflist").exists(), 30)
    assert (socket_dir / "cni.sock").exists(), "the conflist appears only once the socket answers"

    pod = PREFIX + "pod"
    subprocess.run(["ip", "netns", "del", pod], capture_output=True)
    subprocess.run(["ip", "netns", "add", pod], check=True)
    try:
        conflist = json.loads((conf_dir / "10-mycelium.conflist").read_text())
        config = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
        plugin = str(bin_dir / "mycelium-cni")

        def cni(command):
            return subprocess.run([plugin], input=json.dumps(config), capture_output=True, text=True, timeout=30, env={
                "CNI_COMMAND": command, "CNI_CONTAINERID": "e2e-pod", "CNI_NETNS": f"/var/run/netns/{pod}",
                "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir)})

        add = cni("ADD")
        assert add.returncode == 0, add.stdout + add.stderr
        address = json.loads(add.stdout)["ips"][0]["address"].split("/")[0]
        in_pod = lambda target: subprocess.run(["ip", "netns", "exec", pod, "ping", "-6", "-c", "1", "-W", "1", target],
                                               capture_output=True, timeout=10).returncode == 0
        wait("the pod to reach the far node over the overlay", lambda: in_pod(far), 60)
        wait("the far node to reach the pod", lambda: ping("far", address), 30)
        assert cni("CHECK").returncode == 0
        assert cni("DEL").returncode == 0
        links = docker("exec", PREFIX + "agent", "cat", "/proc/net/dev").stdout
        assert not re.search(r"myc[0-9a-f]{8}", links), f"the host-side veth is gone: {links}"
    finally:
        subprocess.run(["ip", "netns", "del", pod], capture_output=True)
        docker("rm", "-f", PREFIX + "agent", PREFIX + "far", check=False)


def test_compose_file_runs_three_nodes(image):
    """deploy/compose.yaml as a user runs it (Debian's docker-compose), on the image under test:
    peers named by service, so node-c reaches node-a's overlay address."""
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is missing: run scripts/install-test-tools.sh")
    compose = ["docker-compose", "-H", f"unix://{SOCKET}", "-p", PREFIX + "compose", "-f", str(ROOT / "deploy" / "compose.yaml")]
    environment = {**os.environ, "MYCELIUM_IMAGE": IMAGE}

    def call(*args, timeout=180):
        return subprocess.run([*compose, *args], capture_output=True, text=True, timeout=timeout, env=environment)

    try:
        up = call("up", "-d", "--no-build")
        assert up.returncode == 0, up.stdout + up.stderr

        def address(service):
            r = call("exec", "-T", service, "mycelium", "inspect", "--json", timeout=30)
            return json.loads(r.stdout)["address"] if r.returncode == 0 else None

        a = wait("node-a's key", lambda: address("node-a"), 30)
        c_pid = wait("node-c", lambda: docker("inspect", "-f", "{{.State.Pid}}", f"{PREFIX}compose_node-c_1",
                                               check=False).stdout.strip(), 30)
        reach = lambda: subprocess.run(["nsenter", f"--net=/proc/{c_pid}/ns/net", "ping", "-6", "-c", "1", "-W", "1", a],
                                       capture_output=True, timeout=10).returncode == 0
        wait("node-c to reach node-a over the overlay", reach, 60)
    finally:
        call("down", "-v", "--timeout", "5")


@pytest.fixture(scope="module")
def systemd_image(engine):
    """A bookworm with systemd as PID 1, the runtime libraries, the release binary and
    deploy/systemd/mycelium.service exactly as docs/deploy.md installs them."""
    return bootstrap_image(engine / "rootfs-systemd", "local/mycelium-systemd:test",
                           include=["systemd", "systemd-sysv", "dbus"] + runtime_packages(),
                           files=[(ROOT / ".build-dist" / "mycelium", "usr/local/bin/mycelium"),
                                  (ROOT / "deploy" / "systemd" / "mycelium.service", "etc/systemd/system/mycelium.service")])


def test_systemd_unit_runs_the_node(image, systemd_image):
    """The hardened unit under a real systemd: the node starts, peers with a container, is
    reachable over the overlay, is restarted after a crash with the same key, and a stop
    removes its TUN."""
    node("plain", "MYCELIUM_DISABLE_PEER_DISCOVERY=true")
    plain_ip = wait("plain's IP", lambda: inspect("plain", "{{.NetworkSettings.IPAddress}}"), 30)
    # systemd as PID 1 in a container: it needs SYS_ADMIN, its own cgroup view and a tmpfs /run.
    docker("run", "-d", "--name", PREFIX + "systemd", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
           "--security-opt", "seccomp=unconfined", "--device", "/dev/net/tun", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
           "--sysctl", "net.ipv6.conf.all.forwarding=1", "--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host",
           systemd_image, "/sbin/init")
    name = PREFIX + "systemd"

    def sh(command, check=True):
        return docker("exec", name, "sh", "-c", command, check=check)

    wait("systemd", lambda: sh("systemctl is-system-running", check=False).stdout.strip() in {"running", "degraded"}, 60)
    sh(f"echo 'MYCELIUM_PEERS=tcp://{plain_ip}:9651' > /etc/default/mycelium && "
       "echo 'MYCELIUM_DISABLE_PEER_DISCOVERY=true' >> /etc/default/mycelium && systemctl enable --now mycelium")
    wait("the unit active", lambda: sh("systemctl is-active mycelium", check=False).stdout.strip() == "active", 30)
    key = "/var/lib/mycelium/priv_key.bin"
    address = wait("the node's key", lambda: (lambda r: r.returncode == 0 and json.loads(r.stdout)["address"])(
        sh(f"mycelium inspect --json -k {key}", check=False)), 30)
    assert sh(f"stat -c %a {key}").stdout.strip() in {"600", "640"}
    assert sh("stat -c %a /var/lib/mycelium").stdout.strip() == "700"
    wait("plain to reach the systemd node over the overlay", lambda: ping("plain", address), 60)

    # Only the bounding set's capabilities: CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
    pid = sh("systemctl show -p MainPID --value mycelium").stdout.strip()
    bounding = int(re.search(r"CapBnd:\s+([0-9a-f]+)", sh(f"cat /proc/{pid}/status").stdout).group(1), 16)
    assert bounding == (1 << 12) | (1 << 13), hex(bounding)

    # Restart=on-failure: a crash brings the same node back.
    sh(f"kill -9 {pid}")
    wait("the restart", lambda: sh("systemctl show -p MainPID --value mycelium").stdout.strip() not in {"0", pid}, 30)
    wait("the restarted node reachable", lambda: ping("plain", address), 60)

    assert sh("test -e /sys/class/net/mycelium && echo present || echo gone").stdout.strip() == "present"
    sh("systemctl stop mycelium")
    assert sh("test -e /sys/class/net/mycelium && echo present || echo gone").stdout.strip() == "gone"

    # The CNI drop-in exactly as docs/deploy.md gives it: the agent starts and serves its socket.
    docs = (ROOT / "docs" / "deploy.md").read_text()
    drop_in = re.search(r"```ini\n# (/etc/systemd/system/mycelium\.service\.d/cni\.conf)\n(.*?)```", docs, re.S)
    assert drop_in, "docs/deploy.md shows the CNI drop-in"
    path, text = drop_in.group(1), drop_in.group(2)
    sh(f"mkdir -p {path.rsplit('/', 1)[0]} && cat > {path} <<'EOF'\n{text}EOF\nsystemctl daemon-reload && systemctl start mycelium")
    wait("the CNI agent under systemd", lambda: "CNI agent ready" in sh("journalctl -u mycelium --no-pager", check=False).stdout, 30)
    assert sh("stat -c %a /run/mycelium/cni.sock").stdout.strip() == "600"
    sh("systemctl stop mycelium")

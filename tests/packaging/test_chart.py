"""charts/mycelium: rendered offline by Helm's own library (helm-python-sdk), the objects
asserted, then checked by kubernetes-validate --strict, yamllint and checkov."""
import re

import pytest
import yaml

from conftest import (CHART, KUBE_VERSION, ROOT, container, daemonset, env, find, objects, render, render_chart,
                      run, tool)

# Every option set away from its default, for the mapping and the validators.
ALL_OPTIONS = {
    "node": {
        "peers": ["tcp://[2001:db8::1]:9651", "tcp://peer.example.org:9651"],
        "peerDNS": {"clusterDomain": "k8s.example.", "names": ["mycelium-peers.other.svc.k8s.example"]},
        "tcpListenPort": 9751,
        "quic": {"enabled": False, "port": 9752},
        "tunName": "myc0",
        "tunOffload": False,
        "firewallMark": "0x4d59",
        "peerDiscovery": {"enabled": False, "port": 9750, "interfaces": ["eth0", "eth1"]},
        "privateNetwork": {"name": "cluster-net", "existingSecret": "mycelium-network", "secretKey": "net.key"},
        "apiAddr": "127.0.0.1:8990",
        "jsonrpcAddr": "127.0.0.1:8991",
        "logLevel": "debug",
        "stateDir": "/srv/mycelium/",
        "extraEnv": [{"name": "SWIFT_BACKTRACE", "value": "enable=yes"}],
        "topicConfig": 'default = "Reject"\n"chat.room" = { subnets = ["400::/7"] }\n',
    },
    "cni": {"socketDir": "/run/myc", "route": "default", "mtu": 1380, "confName": "05-mycelium.conflist", "mode": "chained"},
    "health": {"port": 9199},
    "metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
}


def documented_variables():
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {m for row in rows for m in re.findall(r"MYCELIUM_[A-Z_]+", row.split("|")[2])}


def test_manifest_is_a_fresh_render():
    """deploy/kubernetes/mycelium.yaml is the chart with default values (scripts/render-chart.py)."""
    assert render_chart.MANIFEST.read_text() == render_chart.manifest(render()), \
        "deploy/kubernetes/mycelium.yaml is stale: run scripts/render-chart.py"


def test_lint():
    import helm_python

    result = helm_python.lint(str(CHART), strict=True, kube_version=KUBE_VERSION)
    assert result["total_charts_linted"] == 1 and result["errors"] == [], result
    assert [m for m in result["messages"] if m["severity"] >= 2] == [], result


def services(objs):
    return {o["metadata"]["name"]: o for o in find(objs, "Service")}


def test_default_daemonset():
    objs = objects()
    assert {o["kind"] for o in objs} == {"DaemonSet", "ServiceAccount", "Service"}
    assert set(services(objs)) == {"mycelium-peers"}, "no metrics Service or ServiceMonitor unless metrics are enabled"
    (sa,) = find(objs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    ds = daemonset()
    assert ds["metadata"]["namespace"] == "kube-system"
    spec = ds["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet", "a hostNetwork pod resolves cluster names only with this policy"
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["automountServiceAccountToken"] is False
    assert {"operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"operator": "Exists", "effect": "NoExecute"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}

    node = container(ds, "mycelium")
    assert node["image"] == "ghcr.io/mycelium-swift/mycelium:0.1.0", "the tag defaults to appVersion"
    security = node["securityContext"]
    assert "privileged" not in security
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_ADMIN"]}
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert node["resources"]["requests"] and node["resources"]["limits"]["memory"]

    # Probes on the loopback health address, which the node serves there.
    variables = env(node)
    assert variables["MYCELIUM_METRICS_API_ADDRESS"] == "127.0.0.1:9099"
    for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        assert node[probe]["httpGet"] == {"host": "127.0.0.1", "path": path, "port": 9099}, probe

    # The key and the IPAM on a hostPath, so a pod restart keeps the address and the containers'.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"]["hostPath"] == {"path": "/var/lib/mycelium", "type": "DirectoryOrCreate"}
    assert variables["MYCELIUM_KEY_FILE"] == "/var/lib/mycelium/priv_key.bin"
    assert variables["MYCELIUM_STATE_DIR"] == "/var/lib/mycelium"
    assert volumes["tun"]["hostPath"] == {"path": "/dev/net/tun", "type": "CharDevice"}
    mounts = {m["name"]: m for m in node["volumeMounts"]}
    assert mounts["state"]["mountPath"] == "/var/lib/mycelium" and mounts["tun"]["mountPath"] == "/dev/net/tun"
    assert mounts["netns"]["mountPropagation"] == "HostToContainer", "pod namespaces created later must be visible"
    assert mounts["cni-socket"]["mountPath"] == "/run/mycelium"
    assert variables["MYCELIUM_CNI"] == "true" and variables["MYCELIUM_CNI_SOCKET"] == "/run/mycelium/cni.sock"
    assert variables["MYCELIUM_DISABLE_PEER_DISCOVERY"] == "false"
    assert "MYCELIUM_PEERS" not in variables
    assert variables["MYCELIUM_PEER_DNS"] == "mycelium-peers.kube-system.svc.cluster.local", \
        "the nodes of the cluster find each other through the chart's headless Service"

    # install-cni copies only the plugin, as an unprivileged init container; the agent writes the
    # conflist into the host's directory itself once its socket answers.
    install = container(ds, "install-cni")
    assert install["command"] == ["/usr/local/bin/mycelium", "install-cni", "--plugin-only", "--bin-dir=/host/cni/bin"]
    assert install["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    install_mounts = {m["name"]: m["mountPath"] for m in install["volumeMounts"]}
    assert install_mounts == {"cni-bin": "/host/cni/bin"}
    assert mounts["cni-conf"]["mountPath"] == "/host/cni/net.d" and not mounts["cni-conf"].get("readOnly")
    assert variables["MYCELIUM_CNI_CONFLIST"] == "/host/cni/net.d/10-mycelium.conflist"
    assert variables["MYCELIUM_CNI_MODE"] == "primary"
    assert variables["MYCELIUM_CNI_ROUTE"] == "overlay" and variables["MYCELIUM_CNI_MTU"] == "1400"
    assert volumes["cni-bin"]["hostPath"] == {"path": "/opt/cni/bin", "type": "DirectoryOrCreate"}
    assert volumes["cni-conf"]["hostPath"] == {"path": "/etc/cni/net.d", "type": "DirectoryOrCreate"}
    init_names = [c["name"] for c in pod["initContainers"]]
    assert init_names == ["sysctl", "install-cni"]
    assert container(ds, "sysctl")["securityContext"]["privileged"] is True


def test_every_node_option_is_a_value():
    """Each MYCELIUM_* variable of docs/configuration.md is reachable through values (the config
    file excepted: the chart configures by variables only), with the value it was given."""
    variables = env(container(daemonset(ALL_OPTIONS), "mycelium"))
    missing = documented_variables() - {"MYCELIUM_CONFIG_FILE"} - set(variables)
    assert not missing, f"documented options the chart cannot set: {sorted(missing)}"
    assert variables["MYCELIUM_PEERS"] == "tcp://[2001:db8::1]:9651 tcp://peer.example.org:9651"
    assert variables["MYCELIUM_TCP_LISTEN_PORT"] == "9751"
    assert variables["MYCELIUM_QUIC_LISTEN_PORT"] == "9752" and variables["MYCELIUM_DISABLE_QUIC"] == "true"
    assert variables["MYCELIUM_TUN_NAME"] == "myc0"
    assert variables["MYCELIUM_TUN_OFFLOAD"] == "false"
    assert variables["MYCELIUM_FIREWALL_MARK"] == "0x4d59"
    assert variables["MYCELIUM_DISABLE_PEER_DISCOVERY"] == "true"
    assert variables["MYCELIUM_PEER_DISCOVERY_PORT"] == "9750"
    assert variables["MYCELIUM_PEER_DISCOVERY_INTERFACES"] == "eth0 eth1"
    assert variables["MYCELIUM_NETWORK_NAME"] == "cluster-net"
    assert variables["MYCELIUM_NETWORK_KEY_FILE"] == "/etc/mycelium/network/net.key"
    assert variables["MYCELIUM_API_ADDR"] == "127.0.0.1:8990"
    assert variables["MYCELIUM_JSONRPC_ADDR"] == "127.0.0.1:8991"
    assert variables["MYCELIUM_METRICS_API_ADDRESS"] == "[::]:9199"
    assert variables["MYCELIUM_DEBUG"] == "true" and variables["MYCELIUM_SILENT"] == "false"
    assert variables["MYCELIUM_KEY_FILE"] == "/srv/mycelium/priv_key.bin"
    assert variables["MYCELIUM_STATE_DIR"] == "/srv/mycelium"
    assert variables["MYCELIUM_CNI_SOCKET"] == "/run/myc/cni.sock"
    assert variables["MYCELIUM_PEER_DNS"] == "mycelium-peers.kube-system.svc.k8s.example mycelium-peers.other.svc.k8s.example"
    assert variables["MYCELIUM_CNI_CONFLIST"] == "/host/cni/net.d/05-mycelium.conflist"
    assert variables["MYCELIUM_CNI_MODE"] == "chained"
    assert variables["MYCELIUM_CNI_ROUTE"] == "default" and variables["MYCELIUM_CNI_MTU"] == "1380"
    assert variables["SWIFT_BACKTRACE"] == "enable=yes"
    assert variables["MYCELIUM_TOPIC_CONFIG"] == "/etc/mycelium/topics/topics.toml"
    assert env(container(daemonset({"node": {"noTun": True}, "cni": {"enabled": False}}), "mycelium"))["MYCELIUM_NO_TUN"] == "true"
    assert env(container(daemonset({"node": {"logLevel": "error"}}), "mycelium"))["MYCELIUM_SILENT"] == "true"


def test_private_network_key_comes_from_a_secret():
    ds = daemonset(ALL_OPTIONS)
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert volumes["network-key"]["secret"]["secretName"] == "mycelium-network"
    mount = next(m for m in container(ds, "mycelium")["volumeMounts"] if m["name"] == "network-key")
    assert mount == {"name": "network-key", "mountPath": "/etc/mycelium/network", "readOnly": True}


def test_the_agent_writes_the_conflist():
    """install-cni copies only the plugin whatever the CNI values; the agent gets the conflist's
    path on the host mount, named for the mode unless cni.confName names it, and the mode,
    routes and MTU to write into it."""
    for values in [None, ALL_OPTIONS]:
        assert container(daemonset(values), "install-cni")["command"][2:] == ["--plugin-only", "--bin-dir=/host/cni/bin"]
    names = {
        "primary": "10-mycelium.conflist",
        "chained": "00-mycelium.conflist",
    }
    for mode, name in names.items():
        variables = env(container(daemonset({"cni": {"mode": mode}}), "mycelium"))
        assert variables["MYCELIUM_CNI_CONFLIST"] == f"/host/cni/net.d/{name}", mode
        assert variables["MYCELIUM_CNI_MODE"] == mode
    ds = daemonset({"cni": {"confDir": "/etc/cni/conf.d", "confName": "01-overlay.conflist"}})
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert volumes["cni-conf"]["hostPath"]["path"] == "/etc/cni/conf.d"
    assert env(container(ds, "mycelium"))["MYCELIUM_CNI_CONFLIST"] == "/host/cni/net.d/01-overlay.conflist"


def test_peers_service():
    """A headless Service over the DaemonSet's pods (hostNetwork: each pod's IP is its node's),
    whose port `mycelium` makes the SRV record _mycelium._tcp.<service>.<namespace>.svc.<domain>
    that MYCELIUM_PEER_DNS names; not-ready pods are published, as readiness waits for a peer."""
    objs = objects()
    service = services(objs)["mycelium-peers"]
    (ds,) = find(objs, "DaemonSet")
    assert service["metadata"]["namespace"] == "kube-system"
    spec = service["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True
    assert spec["ports"] == [{"name": "mycelium", "port": 9651, "targetPort": "peers", "protocol": "TCP"}]
    assert spec["selector"] == ds["spec"]["selector"]["matchLabels"] == ds["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p for p in container(ds, "mycelium")["ports"]}
    assert ports["peers"] == {"name": "peers", "containerPort": 9651, "protocol": "TCP"}, "targetPort names the listener"
    assert ports["quic"] == {"name": "quic", "containerPort": 9651, "protocol": "UDP"}, "QUIC peers on UDP by default"
    name = f'{service["metadata"]["name"]}.{service["metadata"]["namespace"]}.svc.cluster.local'
    assert env(container(ds, "mycelium"))["MYCELIUM_PEER_DNS"] == name

    # Pod labels added by values do not change the selector; the port follows the listener.
    objs = objects({"podLabels": {"team": "net"}, "node": {"tcpListenPort": 9751}})
    service = services(objs)["mycelium-peers"]
    (ds,) = find(objs, "DaemonSet")
    assert service["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["port"] == 9751
    assert container(ds, "mycelium")["ports"][0]["containerPort"] == 9751

    # The Service's name is a DNS label: at most 63 bytes, whatever the release's name.
    long = services(objects({"fullnameOverride": "m" * 63}))
    (name,) = long
    assert len(name) <= 63 and name.endswith("-peers")
    assert env(container(daemonset({"fullnameOverride": "m" * 63}), "mycelium"))["MYCELIUM_PEER_DNS"].startswith(name + ".")


def test_without_peer_dns():
    """node.peerDNS.enabled=false: no Service, no MYCELIUM_PEER_DNS (its names neither), and the
    host's resolver (the default for a hostNetwork pod)."""
    values = {"node": {"peerDNS": {"enabled": False, "names": ["mycelium-peers.other.svc.cluster.local"]}}}
    objs = objects(values)
    assert find(objs, "Service") == []
    (ds,) = find(objs, "DaemonSet")
    assert "dnsPolicy" not in ds["spec"]["template"]["spec"]
    assert "MYCELIUM_PEER_DNS" not in env(container(ds, "mycelium"))


def test_metrics_service_and_monitor():
    objs = objects(ALL_OPTIONS)
    assert set(services(objs)) == {"mycelium-peers", "mycelium-metrics"}
    service = services(objs)["mycelium-metrics"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9199, "targetPort": "metrics", "protocol": "TCP"}]
    (monitor,) = find(objs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    ports = {p["name"]: p for p in container(daemonset(ALL_OPTIONS), "mycelium")["ports"]}
    assert ports["metrics"]["containerPort"] == 9199 and ports["peers"]["containerPort"] == 9751
    assert "discovery" not in ports, "no discovery port when discovery is off"
    assert "quic" not in ports, "no QUIC port when QUIC is off"


def test_without_cni():
    ds = daemonset({"cni": {"enabled": False}})
    pod = ds["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    node = container(ds, "mycelium")
    assert node["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"], "SYS_ADMIN only for the CNI agent"
    assert {v["name"] for v in pod["volumes"]} == {"state", "tun"}
    assert {m["name"] for m in node["volumeMounts"]} == {"state", "tun"}
    variables = env(node)
    assert variables["MYCELIUM_CNI"] == "false"
    assert not {"MYCELIUM_CNI_CONFLIST", "MYCELIUM_CNI_MODE", "MYCELIUM_CNI_ROUTE", "MYCELIUM_CNI_MTU"} & set(variables)


def test_privileged_only_when_asked():
    node = container(daemonset({"securityContext": {"privileged": True}}), "mycelium")
    assert node["securityContext"]["privileged"] is True and "capabilities" not in node["securityContext"]
    assert "sysctl" not in [c["name"] for c in daemonset({"sysctlInit": {"enabled": False}})["spec"]["template"]["spec"]["initContainers"]]


def test_quic_and_pinned_peers_pass_through():
    """quic:// peers and pinned keys (?key=) are peers like any other: the schema takes them."""
    key = "ab" * 32
    peers = [f"quic://[2001:db8::1]:9651?key={key}", f"tcp://peer.example.org:9651?key={key}", "tcp://192.0.2.1:9651"]
    variables = env(container(daemonset({"node": {"peers": peers}}), "mycelium"))
    assert variables["MYCELIUM_PEERS"] == " ".join(peers)


@pytest.mark.parametrize("values, message", [
    ({"node": {"logLevel": "verbose"}}, "/node/logLevel"),
    ({"node": {"noTun": True}}, "cni.enabled needs the TUN device"),
    ({"node": {"privateNetwork": {"name": "net"}}}, "needs node.privateNetwork.existingSecret"),
    # values.schema.json: a misspelt key or a value the node would refuse fails at install time.
    ({"node": {"peer": ["tcp://[2001:db8::1]:9651"]}}, "additional properties 'peer' not allowed"),
    ({"node": {"peers": ["udp://[2001:db8::1]:9651"]}}, "/node/peers/0"),
    ({"node": {"peers": ["tcp://[2001:db8::1]:9651 tcp://[2001:db8::2]:9651"]}}, "/node/peers/0"),
    ({"cni": {"mtu": 9000}}, "/cni/mtu"),
    ({"cni": {"mode": "secondary"}}, "/cni/mode"),
    ({"node": {"tcpListenPort": 70000}}, "/node/tcpListenPort"),
    ({"node": {"quic": {"port": 0}}}, "/node/quic/port"),
    ({"node": {"peerDNS": {"names": ["two words"]}}}, "/node/peerDNS/names/0"),
    ({"node": {"peerDNS": {"clusterDomain": ""}}}, "/node/peerDNS/clusterDomain"),
    ({"node": {"peerDNS": {"enable": True}}}, "additional properties 'enable' not allowed"),
    # The agent waits for the chained CNI's conflist as long as it takes: no such value any more.
    ({"cni": {"chainWaitSeconds": 30}}, "additional properties 'chainWaitSeconds' not allowed"),
])
def test_bad_values_fail_with_a_message(values, message):
    with pytest.raises(Exception) as raised:
        render(values)
    assert message in str(raised.value)


def test_notes_tell_how_to_see_node_addresses():
    notes = render()["mycelium/templates/NOTES.txt"]
    assert "mycelium inspect" in notes and "kubectl -n kube-system" in notes
    assert "No peers are configured" not in notes, "the nodes of the cluster find each other through peer DNS"
    assert "headless Service mycelium-peers" in notes and "mycelium-peers.kube-system.svc.cluster.local" in notes
    assert "Set node.peers to join a wider network" in notes
    assert "Pods get eth0 with an address in their node's /64 through /etc/cni/net.d/10-mycelium.conflist" in notes
    assert "The agent writes the conflist once its socket answers" in notes
    chained = render(ALL_OPTIONS)["mycelium/templates/NOTES.txt"]
    assert "No peers are configured" not in chained and "Set node.peers" not in chained
    assert "second interface, myc0" in chained and "05-mycelium.conflist" in chained
    assert "once its socket answers and the cluster CNI's conflist is there" in chained
    no_dns = render({"node": {"peerDNS": {"enabled": False}}})["mycelium/templates/NOTES.txt"]
    assert "No peers are configured and node.peerDNS is off: nodes find each other only by LAN discovery" in no_dns
    alone = render({"node": {"peerDNS": {"enabled": False}, "peerDiscovery": {"enabled": False}}})["mycelium/templates/NOTES.txt"]
    assert "no node finds another" in alone


@pytest.fixture(scope="module")
def rendered_files(tmp_path_factory):
    """The default render and the all-options render, as files for the command-line validators."""
    out = tmp_path_factory.mktemp("rendered")
    files = []
    for name, values in [("default", None), ("all-options", ALL_OPTIONS),
                         ("no-cni-no-peer-dns", {"cni": {"enabled": False}, "node": {"peerDNS": {"enabled": False}}})]:
        path = out / name / "manifest.yaml"
        path.parent.mkdir()
        path.write_text(render_chart.manifest(render(values)))
        files.append(path)
    return files


def test_kubernetes_validate_strict(rendered_files):
    for path in rendered_files:
        # The ServiceMonitor is a CRD, outside the bundled schemas: validated without it.
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] != "ServiceMonitor"]
        core = path.with_name("core.yaml")
        core.write_text(yaml.safe_dump_all(docs))
        r = run([tool("kubernetes-validate"), "--strict", "-k", KUBE_VERSION, str(core)])
        assert r.returncode == 0, f"{path.parent.name}: {r.stdout}{r.stderr}"
        assert "passed" in r.stdout + r.stderr


def test_kubernetes_validate_catches_a_typo(tmp_path):
    """The validator is not vacuous: a misspelt field fails."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(render_chart.MANIFEST.read_text().replace("hostNetwork:", "hostNetwrok:"))
    assert run([tool("kubernetes-validate"), "--strict", "-k", KUBE_VERSION, str(bad)]).returncode != 0


def test_yamllint(rendered_files):
    files = [str(p) for p in rendered_files] + [str(ROOT / f) for f in [
        "deploy/kubernetes/mycelium.yaml", "deploy/compose.yaml", "charts/mycelium/values.yaml", "charts/mycelium/Chart.yaml",
        ".yamllint.yaml"]]
    r = run([tool("yamllint"), "--strict", "-c", str(ROOT / ".yamllint.yaml")] + files)
    assert r.returncode == 0, r.stdout + r.stderr


def test_checkov(rendered_files):
    """No failed check; every skip is an annotation on the DaemonSet with its reason."""
    for path in rendered_files:
        r = run([tool("checkov"), "-f", str(path), "--framework", "kubernetes", "--skip-download", "--compact", "-o", "json"],
                env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", "BC_SKIP_MAPPING": "TRUE"})
        report = yaml.safe_load(r.stdout)
        report = report[0] if isinstance(report, list) else report
        summary = report["summary"]
        assert summary["resource_count"] >= 2, f"{path.parent.name}: checkov parsed nothing: {r.stdout[:500]}{r.stderr[-2000:]}"
        failed = [(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]]
        assert not failed, f"{path.parent.name}: {failed}"
        for skipped in report["results"]["skipped_checks"]:
            reason = skipped["check_result"].get("suppress_comment", "")
            assert len(reason) > 20, f"{skipped['check_id']} is skipped without a reason"


def test_topic_file_comes_from_a_configmap():
    maps = [d for d in find(objects(ALL_OPTIONS), "ConfigMap") if d["metadata"]["name"].endswith("-topics")]
    assert len(maps) == 1 and maps[0]["data"]["topics.toml"].startswith('default = "Reject"')
    ds = daemonset(ALL_OPTIONS)
    mount = next(m for m in container(ds, "mycelium")["volumeMounts"] if m["name"] == "topics")
    assert mount == {"name": "topics", "mountPath": "/etc/mycelium/topics", "readOnly": True}
    assert not find(objects(), "ConfigMap"), "no ConfigMap without a topic file"

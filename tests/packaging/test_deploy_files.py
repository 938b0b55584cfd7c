"""The Dockerfile (hadolint), deploy/compose.yaml and deploy/systemd/mycelium.service."""
import re

import yaml

from conftest import ROOT, run, runtime_packages, tool


def test_hadolint():
    r = run([tool("hadolint"), "--failure-threshold", "style", str(ROOT / "Dockerfile")])
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_shape():
    """Runtime libraries only, the daemon as entrypoint, the plugin beside it for install-cni,
    a readiness HEALTHCHECK, the state in a volume, and a target for locally built binaries."""
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)
    assert [name for _, name in stages] == ["runtime-base", "runtime-local", "build", "runtime"], \
        "runtime-local comes before the Swift stage, so the legacy builder never reaches it"
    assert stages[-1][0] == "runtime-base" and stages[1][0] == "runtime-base"
    assert runtime_packages() == ["libsodium23", "libnl-3-200", "libnl-route-3-200", "libssl3",
                       "libngtcp2-9", "libngtcp2-crypto-gnutls2", "libgnutls30", "ca-certificates"]
    assert 'ENTRYPOINT ["/usr/local/bin/mycelium"]' in text
    assert 'CMD ["/usr/local/bin/mycelium", "healthcheck"]' in text
    assert 'VOLUME ["/var/lib/mycelium"]' in text
    assert "RUN scripts/build-release.sh /dist" in text, "the build stage runs the same script as CI"
    assert "COPY .build-dist/mycelium .build-dist/mycelium-cni /usr/local/bin/" in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*"):][:1] == ["*"] and "!.build-dist/mycelium" in ignore


def test_compose():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert len(services) >= 2
    for name, service in services.items():
        assert "NET_ADMIN" in service["cap_add"], name
        assert "/dev/net/tun" in service["devices"], name
        assert service["sysctls"]["net.ipv6.conf.all.disable_ipv6"] == 0, name
        volumes = service["volumes"]
        assert any(v.endswith(":/var/lib/mycelium") and v.split(":")[0] in compose["volumes"] for v in volumes), name
        assert "command" not in service and "entrypoint" not in service, f"{name}: configured by variables only"
        assert all(key.startswith("MYCELIUM_") for key in service.get("environment", {})), name
        assert "privileged" not in service, name
    peered = [s for s in services.values() if "MYCELIUM_PEERS" in s.get("environment", {})]
    assert len(peered) >= 1, "some node dials another"
    for service in peered:
        for peer in service["environment"]["MYCELIUM_PEERS"].split():
            host = re.match(r"tcp://([^:/]+):9651$", peer).group(1)
            assert host in services, f"{peer} names a service of this file"


def test_systemd_unit(tmp_path):
    text = (ROOT / "deploy" / "systemd" / "mycelium.service").read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    assert settings["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert settings["StateDirectory"] == ["mycelium"]
    assert settings["Restart"] == ["on-failure"]
    assert "MYCELIUM_KEY_FILE=/var/lib/mycelium/priv_key.bin" in settings["Environment"]
    assert settings["DeviceAllow"] == ["/dev/net/tun rw"]

    # systemd itself checks the unit (ExecStart pointed at a binary that exists here).
    unit = tmp_path / "mycelium.service"
    unit.write_text(text.replace("ExecStart=/usr/local/bin/mycelium run", "ExecStart=/bin/true run"))
    r = run(["systemd-analyze", "verify", str(unit)])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(["systemd-analyze", "security", "--offline=true", str(unit)])
    level = re.search(r"Overall exposure level for mycelium.service: ([0-9.]+)", r.stdout + r.stderr)
    assert level, r.stdout + r.stderr
    assert float(level.group(1)) <= 3.0, f"exposure {level.group(1)}: {r.stdout}"

#!/usr/bin/env bash
# Installs what only the tests use, if missing:
# - Debian: Go and libcni (golang-github-appc-cni-dev) to build scripts/cni-driver, the runtime
#   library containerd and CRI-O use, and the reference CNI plugins (containernetworking-plugins,
#   in /usr/lib/cni) to chain ours with (Tests/IntegrationTests/LibCNITests.swift);
# - Debian: podman with runc and busybox-static, a full container runtime running our network
#   (Tests/IntegrationTests/PodmanTests.swift);
# - Debian: docker.io (a private engine), docker-compose, debootstrap (a local bookworm base
#   image) and systemd's systemd-analyze, for the packaging tests (tests/packaging);
# - Debian: dnsmasq-base, a real DNS server serving SRV and AAAA records in a test namespace
#   (Tests/IntegrationTests/PeerDNSTests.swift);
# - PyPI: schemathesis checks the running API against docs/api.yaml (APIContractTests.swift);
#   aioquic, an independent QUIC implementation, relays between two nodes (QUICInteropTests.swift).
#   The packaging tests' PyPI tools are installed by scripts/test-packaging.sh in a venv.
set -euo pipefail

packages=(golang-go golang-github-appc-cni-dev containernetworking-plugins
          podman runc busybox-static
          docker.io docker-compose debootstrap systemd python3-venv
          dnsmasq-base)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

aioquic_version=1.7.2
if ! python3 -c "import aioquic, sys; sys.exit(aioquic.__version__ != '$aioquic_version')" 2>/dev/null; then
    echo "installing: aioquic $aioquic_version (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "aioquic==$aioquic_version"
fi

version=4.32.5
if command -v schemathesis >/dev/null && schemathesis --version 2>/dev/null | grep -q "$version"; then
    exit 0
fi
echo "installing: schemathesis $version (PyPI)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "schemathesis==$version"
command -v schemathesis >/dev/null || { hash -r; command -v schemathesis >/dev/null; } || {
    echo "schemathesis was installed but is not on PATH ($(python3 -m site --user-base)/bin?)" >&2
    exit 1
}

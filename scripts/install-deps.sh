#!/usr/bin/env bash
# Installs the Debian packages this project builds and tests with, if any are missing.
# Safe to run repeatedly: it only calls apt-get when something is absent.
set -euo pipefail

packages=(
    pkg-config        # SwiftPM finds the C libraries through it
    libssl-dev        # OpenSSL 3: AES-256-GCM packet cipher, TLS 1.3 with a PSK
    openssl           # tests check TLS-PSK interop with `openssl s_client` / `s_server`
    libsodium-dev     # X25519, CSPRNG
    libnl-3-dev       # netlink (TUN, routes, rules, veth)
    libnl-route-3-dev
    libngtcp2-dev     # QUIC (ngtcp2 0.12) with its GnuTLS backend
    libngtcp2-crypto-gnutls-dev
    libgnutls28-dev
    iproute2          # tests build network namespaces with `ip`
    iputils-ping      # tests ping across namespaces
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

# The mycelium node and CNI agent.
#
#   docker build -t mycelium .
#       Full build: a Swift stage runs scripts/build-release.sh, the runtime stage gets its output.
#   scripts/build-release.sh && docker build --target runtime-local -t mycelium .
#       The same runtime stage from binaries built outside Docker (in .build-dist/), as CI does
#       where base images cannot be pulled (BASE_IMAGE then names a locally imported bookworm).
#
# Stages are ordered so that `--target runtime-local` never reaches the Swift stage: the legacy
# builder builds every stage before its target.
#
# Run it with the TUN device and NET_ADMIN; everything else is MYCELIUM_* variables:
#   docker run -d --cap-add NET_ADMIN --device /dev/net/tun -v mycelium:/var/lib/mycelium \
#       -e MYCELIUM_PEERS=tcp://[2001:db8::1]:9651 mycelium

ARG BASE_IMAGE=debian:bookworm-slim
ARG SWIFT_IMAGE=swift:6.3.1-bookworm

FROM ${BASE_IMAGE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Only the shared libraries the daemon links (the Swift runtime is static). Versions are left to
# bookworm's security updates rather than pinned, so a rebuild picks up fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsodium23 libnl-3-200 libnl-route-3-200 libssl3 \
        libngtcp2-9 libngtcp2-crypto-gnutls2 libgnutls30 ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# The node key and the CNI agent's IPAM live in one volume, so a new container keeps its overlay
# address and never renumbers containers.
ENV MYCELIUM_KEY_FILE=/var/lib/mycelium/priv_key.bin \
    MYCELIUM_STATE_DIR=/var/lib/mycelium
VOLUME ["/var/lib/mycelium"]
# Peers (TCP and QUIC), LAN discovery (UDP); the REST API stays on loopback (MYCELIUM_API_ADDR).
EXPOSE 9651/tcp 9651/udp 9650/udp
# Ready = TUN configured, listener bound, a peer alive if peers are configured (docs/api.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/mycelium", "healthcheck"]
# Root without a USER switch: opening /dev/net/tun and netlink need it (with NET_ADMIN only).
ENTRYPOINT ["/usr/local/bin/mycelium"]

FROM runtime-base AS runtime-local
# `mycelium install-cni` copies the plugin from beside the daemon: /usr/local/bin/mycelium-cni.
COPY .build-dist/mycelium .build-dist/mycelium-cni /usr/local/bin/

FROM ${SWIFT_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev libsodium-dev libnl-3-dev libnl-route-3-dev \
        libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
COPY scripts/build-release.sh scripts/
RUN scripts/build-release.sh /dist

FROM runtime-base AS runtime
COPY --from=build /dist/mycelium /dist/mycelium-cni /usr/local/bin/

#!/usr/bin/env bash
# The packaging tests (tests/packaging): the Helm chart rendered offline and checked by
# kubernetes-validate, yamllint and checkov; hadolint on the Dockerfile; the compose file and the
# systemd unit; and, as root, the image built from release binaries running two nodes that ping
# each other, and deploy/compose.yaml running three.
# The PyPI tools are pinned in tests/packaging/requirements.txt and live in .build-venv/.
#   scripts/test-packaging.sh             build the release binaries, run every packaging test
#   scripts/test-packaging.sh --render    rewrite deploy/kubernetes/mycelium.yaml from the chart
#   scripts/test-packaging.sh ARGS...     extra pytest arguments, e.g. -k chart
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build-venv
requirements=tests/packaging/requirements.txt
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    echo "installing the packaging test tools into $venv (PyPI, pinned)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi
if [ "${1:-}" = "--render" ]; then
    exec "$venv/bin/python" scripts/render-chart.py
fi
./scripts/build-release.sh
exec "$venv/bin/python" -m pytest -v -p no:cacheprovider tests/packaging "$@"

#!/usr/bin/env bash
# Installs the PyPI tools the tests use, if missing: schemathesis checks the running API
# against docs/api.yaml (Tests/IntegrationTests/APIContractTests.swift).
set -euo pipefail

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

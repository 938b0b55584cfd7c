"""Shared helpers of the packaging tests: the repository, the chart renderer, tool runners."""
import importlib.util
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mycelium"
KUBE_VERSION = "1.30.0"

_spec = importlib.util.spec_from_file_location("render_chart", ROOT / "scripts" / "render-chart.py")
render_chart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_chart)


def runtime_packages():
    """The Debian packages the Dockerfile's runtime stage installs: the libraries the release
    binary links, and ca-certificates."""
    import re
    text = (ROOT / "Dockerfile").read_text()
    return re.search(r"apt-get install -y --no-install-recommends (.+?)&&", text, re.S).group(1).replace("\\", " ").split()


def tool(name):
    """A tool installed beside this interpreter (the packaging venv), else on PATH."""
    here = pathlib.Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run scripts/test-packaging.sh")
    return found


def run(args, **kwargs):
    """Runs a command with a bound on its time; returns the CompletedProcess (text)."""
    kwargs.setdefault("timeout", 300)
    return subprocess.run(args, capture_output=True, text=True, **kwargs)


def render(values=None, **kwargs):
    return render_chart.render(values, **kwargs)


def objects(values=None, **kwargs):
    """The rendered Kubernetes objects, NOTES left out."""
    return [doc for doc in yaml.safe_load_all(render_chart.manifest(render(values, **kwargs))) if doc]


def find(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def daemonset(values=None):
    (ds,) = find(objects(values), "DaemonSet")
    return ds


def container(ds, name):
    spec = ds["spec"]["template"]["spec"]
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        if c["name"] == name:
            return c
    raise KeyError(name)


def env(c):
    return {e["name"]: e.get("value") for e in c.get("env", [])}

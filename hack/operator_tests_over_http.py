"""Run tests/operator in their real-cluster mode against the fake API server over HTTP.

    python hack/operator_tests_over_http.py [pytest args...]

The tests switch to a real cluster when KUBECONFIG is set. No cluster can run here, so this
exercises that switch end to end instead: it serves the in-process fake on 127.0.0.1, writes
a kubeconfig for it, and runs pytest with KUBECONFIG pointing there. Everything then goes
through the kubernetes client and HTTP, exactly as it would against an API server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "agent"))
sys.path.insert(0, str(ROOT / "tests"))  # the fake API (tests/fakekube)

from fakekube.nodes import FakeNodeAPI  # noqa: E402
from fakekube.server import FakeApiServer  # noqa: E402


def main() -> int:
    with FakeApiServer(FakeNodeAPI()) as server, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        env = {"LXCRI_TEST_WATCH_TIMEOUT": "1", **os.environ, "KUBECONFIG": str(kubeconfig),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "agent"), os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "operator"), *sys.argv[1:]]
        return subprocess.call(cmd, env=env, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main())

"""The suite's real-cluster mode must work, not just exist: run tests/operator with
KUBECONFIG pointing at the fake API server over HTTP (hack/operator_tests_over_http.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="already running against a cluster")
def test_operator_tests_pass_in_real_cluster_mode() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "hack" / "operator_tests_over_http.py"), "-x", "-v",
                          "-p", "no:cacheprovider", "--deselect",
                          "tests/operator/test_real_mode.py::test_operator_tests_pass_in_real_cluster_mode"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "against: the cluster in KUBECONFIG" in out.stdout
    assert " passed" in out.stdout

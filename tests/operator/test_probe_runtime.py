"""The probe through a real runc-compatible runtime: lxcri when LXCRI_TEST_RUNTIME names it,
else Debian's runc, whose command line lxcri copies. Proves the smoke bundle is a valid OCI
bundle and the create/start/state/delete sequence works with real process handling (the
created container holds the runtime's stdio open: the probe must not wait for it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lxcri_agent.report.probe import ProbeConfig, probe

RUNTIME = os.environ.get("LXCRI_TEST_RUNTIME") or shutil.which("runc") or ""
SMOKE = shutil.which("busybox") or ""


@pytest.mark.skipif(not RUNTIME or os.geteuid() != 0 or not SMOKE,
                    reason="needs root, a runc-compatible runtime and a static busybox")
def test_smoke_container_through_a_real_runtime(tmp_path: Path) -> None:
    cfg = ProbeConfig(runtime=(RUNTIME,), root=str(tmp_path / "root"), smoke_binary=SMOKE,
                      workdir=str(tmp_path), timeout=30)
    report = probe(cfg)
    assert report.ready, report.reason
    assert report.lxcri  # the version line parsed
    assert report.cgroup in ("v1", "v2", "hybrid")
    leftovers = list((tmp_path / "root").iterdir()) if (tmp_path / "root").exists() else []
    assert not leftovers, f"the smoke container was not deleted: {leftovers}"

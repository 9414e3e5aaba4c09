"""cri-tools' critest (the CRI validation suite CRI-O's and containerd's own CI run) through each
CRI, with `runc` and `lxcri` as two handlers of the same daemon in the same run: lxcri must pass
every spec runc passes, and its run must not take clearly longer than runc's.

The run itself is critest_env.py (also a CLI, for reproducing by hand:
`.venv/bin/python tests/e2e/critest_env.py run --cri crio DIR`). It needs ../shared (critest,
its images, CRI-O): without it these tests skip and say so.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import critest_env
import pytest
from callers import remove_tree

# the run may take this much longer than runc's before it counts as slower: the machine is shared
# and a critest run has single specs of 90 s deadlines, so a few seconds either way are noise
SLOWER_FACTOR = 1.2
SLOWER_SLACK = 20.0


@pytest.mark.parametrize("cri", critest_env.CRIS)
def test_lxcri_passes_every_spec_runc_passes(cri: str) -> None:
    if critest_env.shared_dir() is None:
        pytest.skip("critest, its images and CRI-O come from ../shared, which is neither beside the "
                    "repository nor at $LXCRI_SHARED (default /work/shared): critest cannot run without it")
    d = Path(f"/var/tmp/lxcri-critest-{cri}-{uuid.uuid4().hex[:6]}")  # short: conmon's socket paths
    r = subprocess.run([sys.executable, str(Path(critest_env.__file__)), "run", "--cri", cri, "--timeout", "1500",
                        str(d)], capture_output=True, text=True, timeout=1800, check=False)
    print(r.stdout)
    assert r.returncode == 0, f"critest_env run failed ({r.returncode}); files in {d}\n{r.stdout}\n{r.stderr[-4000:]}"
    results = critest_env.load(d)
    runc, lxcri = results["runc"], results["lxcri"]
    report = critest_env.format_report(results)
    assert runc.count("passed") > 50, f"runc itself passes too little: the set-up is broken\n{report}"
    assert not critest_env.regressions(results), report
    assert lxcri.wall <= runc.wall * SLOWER_FACTOR + SLOWER_SLACK, f"lxcri's run is slower than runc's\n{report}"
    remove_tree(d)

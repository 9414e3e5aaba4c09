"""Keeps the scale benchmark honest: it runs (smaller) in the suite and must say yes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "operator_scale.py"


def test_one_change_costs_o1_and_steady_state_costs_nothing() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--nodes", "300"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no writes in steady state: yes" in out.stdout

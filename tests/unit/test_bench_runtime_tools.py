"""bench/runtime_tools.py's counting: what it calls a failed assert, and which programs it names lxcri's own."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from runtime_tools import Result, lxcri_only, parse_tap

TAP = """TAP version 13
ok 1 - create namespace cgroup without path
not ok 2 - create namespace mnt without path
  ---
  { "actual": "x" }
  ...
ok 3 # SKIP no user namespaces here
not ok 4 - later # TODO not written yet
1..4
"""


def test_not_ok_lines_fail_and_skips_and_todos_do_not():
    r = parse_tap("linux_ns_nopath", TAP, 0)
    assert (r.passed, r.skipped, r.failed, r.total, r.planned) == (2, 1, 1, 4, 4)
    assert r.failures == ["not ok 2 - create namespace mnt without path"]


def test_a_short_plan_a_crash_and_a_timeout_each_count_one_failure():
    assert parse_tap("p", "1..3\nok 1 - a\n", 0).failures == ["planned 3 asserts, printed 1"]
    assert parse_tap("p", "ok 1 - a\n", 2).failures == ["exited 2"]
    assert parse_tap("p", "", 0).failures == ["printed no TAP"]
    assert parse_tap("process_rlimits_fail", "", 1).failures == ["exited 1"]
    assert parse_tap("p", "ok 1 - a\n", None).failures == ["timed out"]
    # a non-zero exit after failed asserts adds nothing: the asserts say what failed
    assert parse_tap("p", "1..1\nnot ok 1 - a\n", 1).failed == 1


def test_a_refusal_program_passes_silent_with_exit_0():
    r = parse_tap("process_rlimits_fail", "", 0)
    assert (r.passed, r.failed) == (1, 0)


def test_lxcri_only_names_the_peers_that_pass():
    def res(prog: str, failed: int) -> Result:
        return Result(prog, rc=0, passed=1, failures=["not ok"] * failed)

    results = {
        "lxcri": {"a": res("a", 1), "b": res("b", 1), "c": res("c", 0)},
        "crun": {"a": res("a", 0), "b": res("b", 2), "c": res("c", 1)},
        "runc": {"a": res("a", 0), "b": res("b", 1), "c": res("c", 0)},
    }
    assert lxcri_only(results) == [("a", ["crun", "runc"])]

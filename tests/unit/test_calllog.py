"""calllog: one appended line per call, and nothing at all when the agent made no file."""

from __future__ import annotations

import os
from pathlib import Path

from lxcri import calllog


def test_appends_one_line_per_call(tmp_path: Path) -> None:
    f = tmp_path / "calls.log"
    f.touch()
    calllog.record(str(f), "create", 0, 0.0123)
    calllog.record(str(f), "delete", 1, 0.002)
    assert f.read_text() == "create 0 12300\ndelete 1 2000\n"


def test_never_creates_the_file(tmp_path: Path) -> None:
    calllog.record(str(tmp_path / "calls.log"), "state", 0, 0.001)
    assert os.listdir(tmp_path) == []


def test_does_not_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    (tmp_path / "calls.log").symlink_to(target)
    calllog.record(str(tmp_path / "calls.log"), "state", 0, 0.001)
    assert target.read_text() == "keep\n"

"""The installed tree's settings file: how the node agent's paths reach a frozen runtime."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lxcri import settings
from lxcri.errors import UsageError


@pytest.fixture
def frozen_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A frozen runtime at <prefix>/lib/<id>/lxcri-py; returns the prefix."""
    tree = tmp_path / "opt" / "lib" / "0123abcd"
    tree.mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tree / "lxcri-py"))
    monkeypatch.setenv("LXCRI_CONFIG", str(tmp_path / "no-such.yaml"))
    for name in settings.DEFAULTS:
        monkeypatch.delenv("LXCRI_" + name.upper(), raising=False)
    return tmp_path / "opt"


def test_not_frozen_reads_no_tree_file() -> None:
    assert settings.installed_config() == "" or getattr(sys, "frozen", False)


def test_frozen_tree_reads_prefix_etc(frozen_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.installed_config() == str(frozen_tree / "etc" / "lxcri.json")
    assert settings.load().call_log == settings.DEFAULTS["call_log"]  # no file: defaults
    (frozen_tree / "etc").mkdir()
    (frozen_tree / "etc" / "lxcri.json").write_text(json.dumps({"call_log": "/run/x/calls.log",
                                                                 "lxcfs_path": "/srv/lxcfs"}))
    s = settings.load()
    assert (s.call_log, s.lxcfs_path) == ("/run/x/calls.log", "/srv/lxcfs")
    monkeypatch.setenv("LXCRI_LXCFS_PATH", "/env/wins")
    assert settings.load().lxcfs_path == "/env/wins"


def test_frozen_tree_file_errors_say_where(frozen_tree: Path) -> None:
    (frozen_tree / "etc").mkdir()
    bad = frozen_tree / "etc" / "lxcri.json"
    bad.write_text('{"no_such_setting": 1}')
    with pytest.raises(UsageError, match="unknown setting"):
        settings.load()
    bad.write_text("{not json")
    with pytest.raises(UsageError, match=str(bad)):
        settings.load()

"""Which levels of a cgroup path a create claims, and which a teardown removes: only those a
create made (recorded, or marked by another create), never one that existed before.

Plain directories under tmp_path stand in for the hierarchies' mount points; the real ones are
covered by tests/integration/test_cgroups.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcri.cgroups import fs, levels
from lxcri.errors import CgroupError


@pytest.fixture
def tops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    made = [tmp_path / "memory", tmp_path / "unified"]
    for d in made:
        d.mkdir()
    fake = [fs.Hierarchy(str(made[0]), frozenset({"memory"}), 1), fs.Hierarchy(str(made[1]), frozenset(), 2)]
    monkeypatch.setattr(levels, "hierarchies", lambda: fake)
    return made


def test_prefixes():
    assert levels.prefixes("/a/b/c") == ["/a", "/a/b", "/a/b/c"]
    assert levels.prefixes("a//b/") == ["/a", "/a/b"]
    with pytest.raises(CgroupError):
        levels.prefixes("/a/../b")


def test_missing_lists_only_what_does_not_exist(tops):
    mem, uni = tops
    (mem / "kubepods" / "pod1").mkdir(parents=True)
    (uni / "kubepods").mkdir()
    leaves, parents = levels.missing("/kubepods/pod1/ctr")
    assert leaves == [str(mem / "kubepods/pod1/ctr"), str(uni / "kubepods/pod1/ctr")]
    assert parents == [str(uni / "kubepods/pod1")]  # deepest first; kubepods existed everywhere


def test_remove_made_keeps_what_existed_and_what_is_in_use(tops):
    mem, uni = tops
    for top in tops:
        (top / "old").mkdir()
    (mem / "old" / "new" / "deeper").mkdir(parents=True)
    (uni / "old" / "new" / "deeper" / "other").mkdir(parents=True)  # another container's, still there
    recorded = [str(top / "old" / "new" / "deeper") for top in tops] + [str(top / "old" / "new") for top in tops]
    levels.remove_made("/old/new/deeper/ctr", recorded)
    assert not (mem / "old" / "new").exists()
    assert (mem / "old").is_dir()  # existed before: never recorded, never removed
    assert (uni / "old" / "new" / "deeper" / "other").is_dir()  # in use: it and everything above stay


@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root")
def test_a_level_marked_by_another_create_goes_with_the_last_container(tops):
    mem, _ = tops
    (mem / "pod").mkdir()
    levels.mark_made([str(mem / "pod")])
    levels.remove_made("/pod/ctr", [])  # this container's create found "pod" there
    assert not (mem / "pod").exists()
    (mem / "admins").mkdir()  # not marked, not recorded: stays
    levels.remove_made("/admins/ctr", [])
    assert (mem / "admins").is_dir()

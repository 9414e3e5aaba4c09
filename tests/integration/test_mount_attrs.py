"""Recursive mount attributes (rro and the other r* options), as Kubernetes' recursiveReadOnly
volumes ask for them through CRI-O: a bind of a host tree whose submounts must be read-only too."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_testlib import LXCRI, leftovers, reap


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted below it (as critest's hostPath for rro has)."""
    src = tmp_path / "seccomp-rro-src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "seccomp-rro", str(src / "sub")], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=False)


SCRIPT = ("for f in /mnt/top /mnt/sub/f /mnt/w/f; do "
          "if touch $f 2>/dev/null; then echo $f=ok; else echo $f=fail; fi; done; "
          "grep -E ' /mnt' /proc/self/mountinfo >&2")


def run(lxcri, make_bundle, tmp_path, tree, options, nested_writable=False):
    b = make_bundle(["sh", "-c", SCRIPT])
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(tree),
                               "options": ["rbind", *options]})
    if nested_writable:  # a mount the config makes later below: runc leaves it as asked
        b.config["mounts"].append({"destination": "/mnt/w", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["size=64k"]})
    b.save()
    cid = lxcri.new_id("seccomp-rro")
    pidf = tmp_path / f"{cid}.pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0
    lxcri("delete", cid, check=True)
    assert leftovers(cid, lxcri.root) == []
    out = (b.path / "out").read_text()
    return dict(ln.split("=", 1) for ln in out.split()), (b.path / "out.err").read_text()


def test_rro_makes_the_submounts_read_only(lxcri, make_bundle, tmp_path, tree):
    got, err = run(lxcri, make_bundle, tmp_path, tree, ["rro"])
    assert got["/mnt/top"] == "fail" and got["/mnt/sub/f"] == "fail", err
    assert not (tree / "top").exists() and not (tree / "sub" / "f").exists()


def test_plain_ro_is_not_recursive(lxcri, make_bundle, tmp_path, tree):
    got, err = run(lxcri, make_bundle, tmp_path, tree, ["ro"])
    assert got["/mnt/top"] == "fail" and got["/mnt/sub/f"] == "ok", err


def test_a_later_mount_below_an_rro_mount_keeps_its_own_flags(lxcri, make_bundle, tmp_path, tree):
    got, err = run(lxcri, make_bundle, tmp_path, tree, ["rro"], nested_writable=True)
    assert got["/mnt/top"] == "fail" and got["/mnt/sub/f"] == "fail", err
    assert got["/mnt/w/f"] == "ok", err


def test_other_recursive_attributes(lxcri, make_bundle, tmp_path, tree):
    b = make_bundle(["sh", "-c", "grep -E ' /mnt(/sub)? ' /proc/self/mountinfo"])
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(tree),
                               "options": ["rbind", "rnosuid", "rnodev", "rnoexec", "rnoatime"]})
    b.save()
    cid = lxcri.new_id("seccomp-rattr")
    pidf = tmp_path / f"{cid}.pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
    lxcri("start", cid, check=True)
    reap(int(pidf.read_text()))
    lines = (b.path / "out").read_text().splitlines()
    assert len(lines) == 2, lines
    for ln in lines:
        opts = ln.split()[5].split(",")
        assert {"nosuid", "nodev", "noexec", "noatime"} <= set(opts), ln


def test_unsupported_recursive_option_is_refused(lxcri, make_bundle, tmp_path, tree):
    b = make_bundle(["true"])
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(tree),
                               "options": ["rbind", "rnostrictatime"]})
    b.save()
    cid = lxcri.new_id("seccomp-rattr")
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and "mounts[" in r.stderr and "rnostrictatime" in r.stderr, r.stderr
    assert leftovers(cid, lxcri.root) == []


def test_features_report_recursive_read_only():
    r = subprocess.run([str(LXCRI), "features"], capture_output=True, text=True, check=True)
    opts = json.loads(r.stdout)["mountOptions"]
    assert {"rro", "rrw", "rnosuid", "rnodev", "rnoexec"} <= set(opts)

"""containerd config edits against golden files: the admin's text kept, our table added, nothing else.

Set LXCRI_UPDATE_GOLDEN=1 to rewrite the expected files after a deliberate change, then review
the diff like any other code change.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from lxcri_agent.errors import AgentError
from lxcri_agent.install import containerd_toml as containerd
from lxcri_agent.install.settings import Settings

from .conftest import GOLDEN, containerd_bin

CASES = sorted(
    p.name.removesuffix(".toml")
    for p in (GOLDEN / "containerd").glob("*.toml")
    if not p.name.endswith(".expected.toml")
)
S = Settings()


@pytest.mark.parametrize("case", CASES)
def test_edit_matches_golden(case: str) -> None:
    src = (GOLDEN / "containerd" / f"{case}.toml").read_text()
    expected_file = GOLDEN / "containerd" / f"{case}.expected.toml"
    out = containerd.edit_text(src, S)
    if os.environ.get("LXCRI_UPDATE_GOLDEN"):
        expected_file.write_text(out)
    assert out == expected_file.read_text()


@pytest.mark.parametrize("case", CASES)
def test_edit_keeps_every_comment_and_is_idempotent(case: str) -> None:
    src = (GOLDEN / "containerd" / f"{case}.toml").read_text()
    out = containerd.edit_text(src, S)
    for line in src.splitlines():
        if line.strip().startswith("#") or ("  #" in line and "lxcri" not in line):
            assert line in out.splitlines(), f"lost: {line!r}"
    assert containerd.edit_text(out, S) == out


@pytest.mark.parametrize("case", CASES)
def test_edit_changes_only_our_runtime(case: str) -> None:
    src = (GOLDEN / "containerd" / f"{case}.toml").read_text()
    before, after = tomllib.loads(src), tomllib.loads(containerd.edit_text(src, S))
    keys = containerd.runtime_keys(containerd.config_version(before), "lxcri")
    entry = containerd._get(after, keys)
    assert entry["runtime_type"] == "io.containerd.runc.v2"
    assert entry["options"]["BinaryName"] == "/opt/lxcri/bin/lxcri"
    assert containerd._without(after, keys) == containerd._without(before, keys)


def test_systemd_cgroup_follows_the_default_runtime() -> None:
    src = (GOLDEN / "containerd" / "v2-kubeadm-default.toml").read_text()
    after = tomllib.loads(containerd.edit_text(src, S))
    assert containerd._get(after, containerd.runtime_keys(2, "lxcri"))["options"]["SystemdCgroup"] is True
    v3 = tomllib.loads(containerd.edit_text((GOLDEN / "containerd" / "v3-containerd2.toml").read_text(), S))
    assert containerd._get(v3, containerd.runtime_keys(3, "lxcri"))["options"]["SystemdCgroup"] is True


def test_plugin_id_per_version() -> None:
    assert containerd.runtime_keys(2, "lxcri")[1] == "io.containerd.grpc.v1.cri"
    assert containerd.runtime_keys(3, "lxcri")[1] == "io.containerd.cri.v1.runtime"


# an original with an lxcri entry of its own is not restored by removal: those cases are left out
@pytest.mark.parametrize("case", [c for c in CASES if "stale-lxcri" not in c])
def test_remove_restores_the_parsed_document(case: str) -> None:
    src = (GOLDEN / "containerd" / f"{case}.toml").read_text()
    edited = containerd.edit_text(src, S)
    assert tomllib.loads(containerd.remove_text(edited, S)) == tomllib.loads(src)


@pytest.mark.skipif(containerd_bin() is None, reason="needs containerd (Debian package containerd)")
@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("v3")])
def test_containerd_accepts_the_edit(case: str, tmp_path: Path) -> None:
    """containerd 1.6 reads every edited v1/v2 file and sees the runtime (it cannot read v3)."""
    src = (GOLDEN / "containerd" / f"{case}.toml").read_text()
    cfg = tmp_path / "config.toml"
    cfg.write_text(containerd.edit_text(src, S).replace("/etc/containerd/conf.d", str(tmp_path / "conf.d")))
    r = subprocess.run([containerd_bin() or "", "--config", str(cfg), "config", "dump"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dumped = tomllib.loads(r.stdout)
    version = containerd.config_version(tomllib.loads(src))
    # containerd migrates v1 plugin ids to v2 names in its dump
    entry = containerd._get(dumped, containerd.runtime_keys(2, "lxcri")) or containerd._get(
        dumped, containerd.runtime_keys(version, "lxcri")
    )
    assert entry["options"]["BinaryName"] == "/opt/lxcri/bin/lxcri"


@pytest.mark.parametrize("text", ["version = 2\n[plugins\n", 'version = "two"\n', "version = 9\n", "a = 1\na = 2\n"])
def test_bad_config_is_refused(text: str) -> None:
    with pytest.raises(AgentError, match="config"):
        containerd.edit_text(text, S)


def test_dropin_text_is_valid_for_each_version() -> None:
    for v in (2, 3):
        doc = tomllib.loads(containerd.dropin_text(v, S, {}))
        assert doc["version"] == v
        assert containerd._get(doc, containerd.runtime_keys(v, "lxcri"))["options"]["BinaryName"]


def test_import_dir_matches_globs() -> None:
    doc = {"imports": ["/etc/containerd/conf.d/*.toml", "other.toml"]}
    assert containerd.import_dir(doc, "/etc/containerd/config.toml", "50-lxcri.toml") == "/etc/containerd/conf.d"
    assert (
        containerd.import_dir({"imports": ["conf.d/*.toml"]}, "/etc/containerd/config.toml", "50-lxcri.toml")
        == "/etc/containerd/conf.d"
    )
    assert containerd.import_dir({"imports": ["/x/*.conf"]}, "/etc/containerd/config.toml", "50-lxcri.toml") is None
    assert containerd.import_dir({}, "/etc/containerd/config.toml", "50-lxcri.toml") is None

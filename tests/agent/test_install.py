"""install / uninstall / upgrade / crash recovery on temporary host roots, in process.

Each host root carries realistic CRI-O and containerd configs (v2 and v3, with and without
runtimes, with the admin's comments); after uninstall every byte must be as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcri_agent import manifest
from lxcri_agent.errors import AgentError
from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import containerd, plan
from lxcri_agent.install.settings import Settings

from .conftest import GOLDEN, HostFactory, Recorder, Tree, containerd_bin, snapshot

S = Settings()
CTD_CASES = sorted(
    p.name.removesuffix(".toml")
    for p in (GOLDEN / "containerd").glob("*.toml")
    if not p.name.endswith(".expected.toml")
)


def validator(root: Path) -> containerd.Validator:
    return containerd.Validator(HostRoot(root), containerd_bin())


def install(root: Path, tree: Tree, rec: Recorder, s: Settings = S, cri: str = "auto") -> plan.Outcome:
    return plan.install(HostRoot(root), s, tree.path, rec, validator(root), cri)


def uninstall(root: Path, rec: Recorder, s: Settings = S) -> plan.Outcome:
    return plan.uninstall(HostRoot(root), s, rec)


@pytest.mark.parametrize("case", CTD_CASES)
def test_containerd_roundtrip_byte_identical(
    case: str, make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    text = (GOLDEN / "containerd" / f"{case}.toml").read_text()
    root = make_host(containerd=text, crio_files={"10-admin.conf": '[crio.runtime]\nlog_level = "info"\n'})
    os.chmod(root / "etc/containerd/config.toml", 0o640)
    before = snapshot(root)
    out = install(root, runtime_tree, recorder)
    assert out.exit_code == 0, out
    assert (root / "etc/containerd/config.toml").read_text() == (
        GOLDEN / "containerd" / f"{case}.expected.toml"
    ).read_text()
    assert os.stat(root / "etc/containerd/config.toml").st_mode & 0o777 == 0o640
    assert sorted(recorder.calls) == [("containerd", "restart"), ("crio", "restart")]
    assert os.path.islink(root / "opt/lxcri/bin/lxcri")
    uninstall(root, recorder)
    assert snapshot(root) == before
    assert recorder.calls[-2:] in (
        [("containerd", "restart"), ("crio", "restart")],
        [("crio", "restart"), ("containerd", "restart")],
    )


def test_crio_dropin_matches_golden(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(crio=True)
    install(root, runtime_tree, recorder)
    got = (root / "etc/crio/crio.conf.d/50-lxcri.conf").read_text()
    golden = GOLDEN / "crio" / "50-lxcri.conf"
    if os.environ.get("LXCRI_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()
    assert recorder.calls == [("crio", "restart")]


def test_crio_reload_when_configured(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(crio=True)
    install(root, runtime_tree, recorder, Settings(crio_apply="reload"))
    assert recorder.calls == [("crio", "reload")]


def test_install_twice_is_a_noop(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text(), crio=True)
    install(root, runtime_tree, recorder)
    after_first = snapshot(root)
    calls = list(recorder.calls)
    out = install(root, runtime_tree, recorder)
    assert out.changed == [] and out.reloaded == []
    assert recorder.calls == calls, "a second install must not restart anything"
    assert snapshot(root) == after_first


def test_no_containerd_config_gets_our_own_file(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host()
    (root / "etc/containerd").mkdir(parents=True)
    before = snapshot(root)
    install(root, runtime_tree, recorder)
    text = (root / "etc/containerd/config.toml").read_text()
    assert "version = 2" in text and 'BinaryName = "/opt/lxcri/bin/lxcri"' in text
    uninstall(root, recorder)
    assert snapshot(root) == before


def test_upgrade_removes_what_the_old_version_owned(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-no-runtimes.toml").read_text(), crio=True)
    before = snapshot(root)
    # an "older version": another drop-in name and another tree
    old = Settings(crio_dropin_priority=40)
    install(root, runtime_tree, recorder, old)
    old_tree = root / "opt/lxcri/lib/0000old"
    shutil.copytree(runtime_tree.path, old_tree, symlinks=True)
    m = manifest.load(HostRoot(root))
    m.owned["/opt/lxcri/lib/0000old"] = manifest.Owned("tree", "0000old")
    manifest.save(HostRoot(root), m)
    recorder.calls.clear()
    out = install(root, runtime_tree, recorder)
    assert not (root / "etc/crio/crio.conf.d/40-lxcri.conf").exists()
    assert (root / "etc/crio/crio.conf.d/50-lxcri.conf").exists()
    assert not old_tree.exists()
    assert recorder.calls == [("crio", "restart")], out  # containerd's config did not change
    uninstall(root, recorder)
    assert snapshot(root) == before


def test_admin_change_after_install_is_kept(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text())
    install(root, runtime_tree, recorder)
    cfg = root / "etc/containerd/config.toml"
    cfg.write_text(cfg.read_text() + '\n[debug]\n  level = "debug"  # added after lxcri\n')
    uninstall(root, recorder)
    text = cfg.read_text()
    assert 'level = "debug"  # added after lxcri' in text
    assert "lxcri]" not in text and "BinaryName" not in text


def test_status_reports_drift(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(crio=True)
    assert plan.status(HostRoot(root), S)["installed"] is False
    install(root, runtime_tree, recorder)
    st = plan.status(HostRoot(root), S)
    assert st["healthy"] and st["items"]["/etc/crio/crio.conf.d/50-lxcri.conf"] == "ok"
    (root / "etc/crio/crio.conf.d/50-lxcri.conf").write_text("# tampered\n")
    st = plan.status(HostRoot(root), S)
    assert not st["healthy"] and st["items"]["/etc/crio/crio.conf.d/50-lxcri.conf"] == "modified"
    install(root, runtime_tree, recorder)  # repairs
    assert plan.status(HostRoot(root), S)["healthy"]


def test_owed_restart_survives_and_is_retried(make_host: HostFactory, runtime_tree: Tree) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text())
    out = install(root, runtime_tree, Recorder(fail=True))
    assert out.exit_code == 3 and "containerd" in out.pending[0]
    assert not plan.status(HostRoot(root), S)["healthy"]
    rec = Recorder()
    out = install(root, runtime_tree, rec)
    assert rec.calls == [("containerd", "restart")] and out.exit_code == 0


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["containerd", "crio"])
def test_unparsable_config_changes_nothing(
    where: str, make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    if where == "containerd":
        root = make_host(containerd='version = 2\n[plugins."io.containerd.grpc.v1.cri"\n', crio=True)
    else:
        root = make_host(containerd="version = 2\n", crio_files={"10-admin.conf": "[crio.runtime\n"})
    before = snapshot(root)
    with pytest.raises(AgentError, match=r"nothing changed|left untouched") as exc:
        install(root, runtime_tree, recorder)
    assert ("config.toml" if where == "containerd" else "10-admin.conf") in str(exc.value)

    def configs(snap: dict[str, bytes | str]) -> dict[str, bytes | str]:
        return {k: v for k, v in snap.items() if not k.startswith("var/")}

    assert configs(snapshot(root)) == configs(before)
    assert recorder.calls == []


def test_missing_host_root(tmp_path: Path, runtime_tree: Tree, recorder: Recorder) -> None:
    with pytest.raises(AgentError, match="does not exist"):
        install(tmp_path / "nope", runtime_tree, recorder)


def test_no_cri_runtime_on_host(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host()
    with pytest.raises(AgentError, match="neither CRI-O"):
        install(root, runtime_tree, recorder)
    assert not (root / "opt").exists()


def test_admin_file_with_our_name_is_not_overwritten(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    root = make_host(crio_files={"50-lxcri.conf": "# mine\n[crio.runtime]\n"})
    with pytest.raises(AgentError, match="not written by lxcri-agent"):
        install(root, runtime_tree, recorder)
    assert (root / "etc/crio/crio.conf.d/50-lxcri.conf").read_text() == "# mine\n[crio.runtime]\n"


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Bind-mount a directory read-only (root ignores file modes, so chmod would prove nothing)."""
    mounted: list[Path] = []

    def make(path: Path) -> None:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        mounted.append(path)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)

    yield make
    for p in reversed(mounted):
        subprocess.run(["umount", str(p)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_read_only_host_path(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, read_only: Callable[[Path], None]
) -> None:
    text = (GOLDEN / "containerd/v2-admin-comments.toml").read_text()
    root = make_host(containerd=text)
    read_only(root / "etc/containerd")
    with pytest.raises(AgentError, match=r"/etc/containerd/config.toml.*read-only file system"):
        install(root, runtime_tree, recorder)
    assert (root / "etc/containerd/config.toml").read_text() == text
    assert recorder.calls == []
    subprocess.run(["umount", str(root / "etc/containerd")], check=True)
    assert install(root, runtime_tree, recorder).exit_code == 0  # once writable, a re-run finishes
    uninstall(root, recorder)
    assert (root / "etc/containerd/config.toml").read_text() == text


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_read_only_host_root(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, read_only: Callable[[Path], None]
) -> None:
    root = make_host(crio=True)
    read_only(root)
    with pytest.raises(AgentError, match=r"/var/lib/lxcri-agent.*read-only file system"):
        install(root, runtime_tree, recorder)


class Crash(Exception):
    """Stands for the process dying between two steps."""


@pytest.mark.parametrize("nth", range(1, 12))
def test_crash_between_steps_is_recovered_by_rerun(
    nth: int, make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the install at its n-th host write; a re-run must finish, an uninstall restore every byte."""
    root = make_host(containerd=(GOLDEN / "containerd/v3-containerd2.toml").read_text(), crio=True)
    before = snapshot(root)
    real_write = HostRoot.write_atomic
    count = {"n": 0}

    def dying_write(self: HostRoot, host_path: str, data: bytes, mode: int = 0o644) -> None:
        count["n"] += 1
        if count["n"] == nth:
            raise Crash(host_path)
        real_write(self, host_path, data, mode)

    monkeypatch.setattr(HostRoot, "write_atomic", dying_write)
    try:
        install(root, runtime_tree, recorder)
        crashed = False
    except Crash:
        crashed = True
    monkeypatch.setattr(HostRoot, "write_atomic", real_write)
    # whatever happened, every config on the node still parses
    import tomllib

    for p in [root / "etc/containerd/config.toml", *(root / "etc/crio/crio.conf.d").glob("*.conf")]:
        tomllib.loads(p.read_text())
    out = install(root, runtime_tree, recorder)
    assert out.exit_code == 0
    assert plan.status(HostRoot(root), S)["healthy"]
    uninstall(root, recorder)
    assert snapshot(root) == before, f"crashed={crashed} at write {nth}"


def test_uninstall_without_install_is_quiet(make_host: HostFactory, recorder: Recorder) -> None:
    root = make_host(crio=True)
    before = snapshot(root)
    assert uninstall(root, recorder).exit_code == 0
    assert snapshot(root) == before and recorder.calls == []


def test_manifest_lists_everything_we_own(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text(), crio=True)
    install(root, runtime_tree, recorder)
    m = json.loads((root / "var/lib/lxcri-agent/manifest.json").read_text())
    assert "/etc/crio/crio.conf.d/50-lxcri.conf" in m["owned"]
    assert "/etc/containerd/config.toml" in m["edits"]
    assert m["owned"]["/opt/lxcri/bin/lxcri"]["kind"] == "symlink"


def test_old_tree_stays_while_containers_use_it(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    root = make_host(crio=True)
    install(root, runtime_tree, recorder)
    old_tree = root / "opt/lxcri/lib/0000old"
    shutil.copytree(runtime_tree.path, old_tree, symlinks=True)
    m = manifest.load(HostRoot(root))
    m.owned["/opt/lxcri/lib/0000old"] = manifest.Owned("tree", "0000old")
    manifest.save(HostRoot(root), m)
    # a container created by the old runtime: its liblxc config names the old tree
    state = root / "run/lxcri/k8s.io/abc123"
    state.mkdir(parents=True)
    (state / "config").write_text("lxc.hook.stop = /opt/lxcri/lib/0000old/lxcri -I -m lxcri.libexec.hook\n")
    install(root, runtime_tree, recorder)
    assert old_tree.is_dir(), "removed under a running container"
    shutil.rmtree(root / "run/lxcri")
    install(root, runtime_tree, recorder)
    assert not old_tree.exists(), "retired once no container uses it"


def test_symlinked_config_stays_a_symlink(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    text = (GOLDEN / "containerd/v2-admin-comments.toml").read_text()
    root = make_host()
    (root / "etc/containerd").mkdir(parents=True)
    (root / "srv/cm").mkdir(parents=True)
    (root / "srv/cm/containerd.toml").write_text(text)
    (root / "etc/containerd/config.toml").symlink_to("/srv/cm/containerd.toml")  # a host-absolute link
    before = snapshot(root)
    install(root, runtime_tree, recorder)
    assert (root / "etc/containerd/config.toml").is_symlink()
    assert "lxcri" in (root / "srv/cm/containerd.toml").read_text()
    uninstall(root, recorder)
    assert snapshot(root) == before


@pytest.mark.parametrize("nth", range(1, 6))
def test_crash_during_uninstall_is_recovered_by_rerun(
    nth: int, make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-kubeadm-default.toml").read_text(), crio=True)
    before = snapshot(root)
    install(root, runtime_tree, recorder)
    real_write = HostRoot.write_atomic
    count = {"n": 0}

    def dying_write(self: HostRoot, host_path: str, data: bytes, mode: int = 0o644) -> None:
        count["n"] += 1
        if count["n"] == nth:
            raise Crash(host_path)
        real_write(self, host_path, data, mode)

    monkeypatch.setattr(HostRoot, "write_atomic", dying_write)
    with contextlib.suppress(Crash):
        uninstall(root, recorder)
    monkeypatch.setattr(HostRoot, "write_atomic", real_write)
    uninstall(root, recorder)
    assert snapshot(root) == before


def test_admin_edits_to_our_config_file_are_theirs(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    """containerd had no config, so the agent wrote one; then the admin added settings to it."""
    root = make_host()
    (root / "etc/containerd").mkdir(parents=True)
    install(root, runtime_tree, recorder)
    cfg = root / "etc/containerd/config.toml"
    cfg.write_text(
        cfg.read_text() + '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/certs.d"\n'
    )
    calls = len(recorder.calls)
    install(root, runtime_tree, recorder)
    assert 'config_path = "/etc/certs.d"' in cfg.read_text(), "the admin's addition was overwritten"
    assert len(recorder.calls) == calls, "nothing of ours changed: no restart"
    uninstall(root, recorder)
    text = cfg.read_text()
    assert 'config_path = "/etc/certs.d"' in text and "lxcri" not in text


def test_upgrade_to_a_broken_tree_keeps_the_old_runtime(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder, tmp_path: Path
) -> None:
    root = make_host(containerd=(GOLDEN / "containerd/v2-admin-comments.toml").read_text())
    install(root, runtime_tree, recorder)
    link_before = os.readlink(root / "opt/lxcri/bin/lxcri")
    broken = tmp_path / "broken"
    shutil.copytree(runtime_tree.path, broken, symlinks=True)
    (broken / "lxcri").write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n")
    (broken / ".tree-id").write_text("b0rken\n")
    calls = list(recorder.calls)
    with pytest.raises(AgentError, match=r"fails `--version`.*cannot start"):
        install(root, Tree(broken, stub=True), recorder)
    assert os.readlink(root / "opt/lxcri/bin/lxcri") == link_before
    assert recorder.calls == calls
    assert plan.status(HostRoot(root), S)["installed"]
    install(root, runtime_tree, recorder)  # the good build again: the broken copy is cleaned up
    assert not (root / "opt/lxcri/lib/b0rken").exists()
    assert plan.status(HostRoot(root), S)["healthy"]


def test_symlinked_config_directory(make_host: HostFactory, runtime_tree: Tree, recorder: Recorder) -> None:
    """/etc/containerd itself links elsewhere with an absolute (host) target."""
    text = (GOLDEN / "containerd/v2-admin-comments.toml").read_text()
    root = make_host()
    (root / "data/containerd").mkdir(parents=True)
    (root / "data/containerd/config.toml").write_text(text)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/containerd").symlink_to("/data/containerd")
    before = snapshot(root)
    install(root, runtime_tree, recorder)
    assert "lxcri" in (root / "data/containerd/config.toml").read_text()
    uninstall(root, recorder)
    assert snapshot(root) == before


def test_host_lock_serialises_agents(make_host: HostFactory) -> None:
    root = make_host(crio=True)
    a, b = HostRoot(root), HostRoot(root)
    with a.lock(), pytest.raises(AgentError, match=rf"pid {os.getpid()}.*holds"), b.lock(timeout=0.5):
        pass
    with b.lock(timeout=0.5):  # free again
        pass


def test_crio_dropin_read_later_that_defines_lxcri_is_reported(
    make_host: HostFactory, runtime_tree: Tree, recorder: Recorder
) -> None:
    theirs = '[crio.runtime.runtimes.lxcri]\nruntime_path = "/usr/local/bin/lxcri"\n'
    root = make_host(crio_files={"99-local.conf": theirs})
    before = {k: v for k, v in snapshot(root).items() if not k.startswith("var/")}
    with pytest.raises(AgentError, match=r"99-local.conf also defines the lxcri runtime"):
        install(root, runtime_tree, recorder)
    assert {k: v for k, v in snapshot(root).items() if not k.startswith("var/")} == before
    # one read before ours is fine: ours wins
    root2 = make_host(crio_files={"10-local.conf": theirs}, name="host2")
    assert install(root2, runtime_tree, recorder).exit_code == 0

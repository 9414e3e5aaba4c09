"""lxcconf.system: the config rewrite that lets systemd boot as a container's PID 1."""

from __future__ import annotations

import pytest

from lxcri.errors import TranslateError
from lxcri.lxcconf import system


def pod_config() -> dict:
    """The shape CRI-O and containerd give a pod's container (abridged)."""
    return {
        "process": {"args": ["/sbin/init"], "env": ["PATH=/usr/bin:/bin"]},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/run/secrets/kubernetes.io/serviceaccount", "type": "bind", "source": "/x",
             "options": ["rbind", "ro"]},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
        "annotations": {system.ANNOTATION: "true"},
    }


def test_rewrite_for_systemd():
    cfg = pod_config()
    system.apply(cfg)
    dests = [m["destination"] for m in cfg["mounts"]]
    # /run and /run/lock come before the token below /run, so they never hide it
    assert dests == ["/proc", "/sys/fs/cgroup", "/run", "/run/lock", "/run/secrets/kubernetes.io/serviceaccount"]
    assert "ro" not in cfg["mounts"][1]["options"]  # systemd writes its own cgroups
    assert {"type": "cgroup"} in cfg["linux"]["namespaces"]
    assert "container=lxc" in cfg["process"]["env"]


def test_no_cgroup_mount_gets_one_and_existing_env_is_kept():
    cfg = pod_config()
    cfg["mounts"] = [m for m in cfg["mounts"] if m["type"] != "cgroup"]
    cfg["process"]["env"].append("container=podman")
    system.apply(cfg)
    assert any(m["destination"] == "/sys/fs/cgroup" and m["type"] == "cgroup" for m in cfg["mounts"])
    assert [e for e in cfg["process"]["env"] if e.startswith("container=")] == ["container=podman"]


def test_the_configs_own_run_gives_way():
    cfg = pod_config()
    cfg["mounts"].insert(0, {"destination": "/run", "type": "bind", "source": "/host/run", "options": ["rbind"]})
    system.apply(cfg)
    runs = [m for m in cfg["mounts"] if m["destination"] == "/run"]
    assert len(runs) == 1 and runs[0]["type"] == "tmpfs"


def test_crio_systemd_mode_bind_of_the_host_hierarchy_is_dropped():
    """CRI-O's systemd mode (an /sbin/init command) binds the host's whole name=systemd
    hierarchy; a system container gets its own namespaced one instead, never the host's."""
    cfg = pod_config()
    cfg["mounts"] += [
        {"destination": "/sys/fs/cgroup/systemd", "type": "bind", "source": "/sys/fs/cgroup/systemd",
         "options": ["bind", "nodev", "noexec", "nosuid"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["rw", "noexec", "tmpcopyup"]},
    ]
    system.apply(cfg)
    assert [m["destination"] for m in cfg["mounts"] if m["destination"].startswith("/sys/fs/cgroup")] == [
        "/sys/fs/cgroup"]
    assert [m["type"] for m in cfg["mounts"] if m["destination"] == "/run"] == ["tmpfs"]


@pytest.mark.parametrize(("value", "want"), [("true", True), ("False", False), (None, False)])
def test_wanted(value, want):
    assert system.wanted({} if value is None else {system.ANNOTATION: value}) is want


def test_bad_value_names_the_annotation():
    with pytest.raises(TranslateError, match="system-container"):
        system.wanted({system.ANNOTATION: "perhaps"})

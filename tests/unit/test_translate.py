"""The pure OCI -> liblxc translation, without root: the items liblxc will be given.

This is also where the pure cgroup v2 host (which cannot run here) is covered: the
device rules go to lxc.cgroup2.* keys there.
"""

from __future__ import annotations

import pytest

from lxcri.errors import TranslateError
from lxcri.lxcconf import Context, escape_fstab
from lxcri.lxcconf.base import hooks
from lxcri.lxcconf.cgroups import cgroup_path, devices, placement, resources, systemd_path
from lxcri.lxcconf.mounts import (
    MS_PRIVATE,
    MS_REC,
    MS_SHARED,
    MS_SLAVE,
    container_path,
    devpts_guard,
    masked_paths,
    mounts,
    propagation,
    readonly_paths,
)
from lxcri.lxcconf.namespaces import namespaces
from lxcri.lxcconf.process import process


def ctx(version: int = 1) -> Context:
    return Context(container_id="c1", runtime_dir="/run/lxcri/c1", rootfs="/b/rootfs", init_path="/x/lxcri-init",
                   hook_cmd="/x/lxcri --root /run/lxcri hook", sync_fd=5, fifo_fd=6, cgroup_path="/lxcri/c1",
                   cgroup_version=version)


def test_namespaces_created_joined_and_shared():
    cfg = {"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"},
                                    {"type": "uts"}]}, "hostname": "h"}
    items = dict(namespaces(cfg, ctx()))
    assert items["lxc.namespace.clone"] == "mnt pid uts"
    assert items["lxc.namespace.share.net"] == "/var/run/netns/x"
    assert items["lxc.uts.name"] == "h"
    assert "lxc.net.0.type" not in items  # a joined netns gets no liblxc network


def test_no_network_namespace_shares_the_hosts():
    assert ("lxc.net.0.type", "none") in namespaces({"linux": {"namespaces": [{"type": "pid"}]}}, ctx())
    assert ("lxc.net.0.type", "empty") in namespaces({"linux": {"namespaces": [{"type": "network"}]}}, ctx())


def test_mappings_without_the_containers_root_are_refused_clearly():
    cfg = {"linux": {"namespaces": [{"type": "user"}],
                     "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1000}],
                     "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1000}]}}
    with pytest.raises(TranslateError, match=r"linux\.uidMappings must map the container's id 0"):
        namespaces(cfg, ctx())


def test_a_mount_namespace_path_is_joined_and_none_listed_is_created():
    items = namespaces({"linux": {"namespaces": [{"type": "mount", "path": "/run/x/mnt"}, {"type": "pid"}]}}, ctx())
    assert ("lxc.namespace.share.mnt", "/run/x/mnt") in items
    assert ("lxc.namespace.clone", "pid") in items
    # not inherited: liblxc would set the rootfs up and pivot_root in the host's mount namespace
    assert ("lxc.namespace.clone", "mnt pid") in namespaces({"linux": {"namespaces": [{"type": "pid"}]}}, ctx())


@pytest.mark.parametrize("bad", [
    {"linux": {"namespaces": [{"type": "bogus"}]}},
    {"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}},
    {"linux": {"namespaces": [{"type": "pid"}]}, "hostname": "h"},  # hostname without a uts namespace
])
def test_namespace_errors(bad):
    with pytest.raises(TranslateError):
        namespaces(bad, ctx())


def test_mounts_bind_tmpfs_cgroup_devpts():
    cfg = {"mounts": [
        {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
        {"destination": "/tmp x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
    ]}
    items = mounts(cfg, ctx(), lambda p: "dir")
    assert items[0] == ("lxc.mount.entry", "/srv/data data none rbind,ro,create=dir 0 0")
    assert items[1] == ("lxc.mount.entry", "tmpfs tmp\\040x tmpfs size=1m,create=dir 0 0")
    assert ("lxc.mount.auto", "cgroup:ro:force") in items
    # devpts keeps its place among the mounts; liblxc unmounts the guard over it (mounts.devpts_guard)
    assert items[-1] == ("lxc.mount.entry", "devpts dev/pts devpts create=dir 0 0")
    assert devpts_guard(cfg) == [("lxc.mount.entry", "lxcri-devpts-guard dev/pts tmpfs size=4k,mode=000,optional 0 0")]


def test_bind_of_missing_source_is_an_error():
    with pytest.raises(TranslateError, match="does not exist"):
        mounts({"mounts": [{"destination": "/d", "type": "bind", "source": "/nope"}]}, ctx(), lambda p: None)


def test_destinations_never_leave_the_rootfs():
    assert container_path("/../../etc/x", "d") == "/etc/x"
    assert container_path("a/b", "d") == "/a/b"
    with pytest.raises(Exception, match="newlines"):
        container_path("/a\nlxc.rootfs.path = dir:/", "d")


def test_masked_and_readonly_paths():
    cfg = {"linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/nope"], "readonlyPaths": ["/proc/sys", "a/../b"]}}
    kinds = {"/proc/kcore": "file", "/proc/acpi": "dir", "/proc/sys": "dir"}
    items = [v for _, v in masked_paths(cfg, kinds.get)]
    assert items[0].startswith("/dev/null proc/kcore none bind")
    assert items[1].startswith("tmpfs proc/acpi tmpfs ro,")
    assert len(items) == 2  # a path the container lacks is skipped
    assert readonly_paths(cfg) == ["/proc/sys", "/b"]  # made read-only by the init helper


def test_process_items():
    cfg = {"process": {"cwd": "/w", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 2**64 - 1}],
                       "noNewPrivileges": True, "oomScoreAdj": 100},
           "linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}
    items = dict(process(cfg))
    assert items == {"lxc.init.cwd": "/", "lxc.prlimit.nofile": "10:unlimited", "lxc.no_new_privs": "1",
                     "lxc.proc.oom_score_adj": "100", "lxc.sysctl.net.ipv4.ip_forward": "1"}
    with pytest.raises(TranslateError, match="exceeds"):
        process({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}})


def test_devices_v1_and_v2_keys():
    cfg = {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"},
                                               {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                "access": "rw"}]}}}
    v1 = devices(cfg, ctx(1))
    assert v1[0] == ("lxc.cgroup.devices.deny", "a")
    assert ("lxc.cgroup.devices.allow", "c 10:229 rw") in v1
    assert ("lxc.cgroup.devices.allow", "c 1:3 rwm") in v1  # /dev/null always
    v2 = devices(cfg, ctx(2))
    assert all(k.startswith("lxc.cgroup2.devices.") for k, _ in v2)


def test_cgroup_paths():
    assert cgroup_path({}, "c1", False) == "/lxcri/c1"
    assert cgroup_path({"linux": {"cgroupsPath": "/kubepods/pod1/c1"}}, "c1", False) == "/kubepods/pod1/c1"
    assert cgroup_path({"linux": {"cgroupsPath": "rel/c1"}}, "c1", False) == "/rel/c1"
    assert systemd_path("kubepods-burstable-pod1.slice:crio:abc") == (
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/crio-abc.scope")
    assert cgroup_path({"linux": {"cgroupsPath": "system.slice:lxcri:x"}}, "x", False) == "/system.slice/lxcri-x.scope"
    with pytest.raises(TranslateError):
        cgroup_path({"linux": {"cgroupsPath": "/../.."}}, "c1", False)


def test_hook_points_go_through_the_mount_hook():
    assert hooks({"hooks": {"poststop": [{"path": "/x"}]}}, ctx()) == []
    assert hooks({"hooks": {"prestart": [{"path": "/x"}]}}, ctx()) == [
        ("lxc.hook.mount", "/x/lxcri --root /run/lxcri hook --sync-fd 5")]


def test_escape_fstab():
    assert escape_fstab("a b\tc\\d") == "a\\040b\\011c\\134d"


def test_time_offsets_go_to_liblxc_in_one_unit():
    cfg = {"linux": {"namespaces": [{"type": "time"}],
                     "timeOffsets": {"boottime": {"secs": -3600}, "monotonic": {"nanosecs": 250}}}}
    items = namespaces(cfg, ctx())
    assert ("lxc.namespace.clone", "mnt time") in items
    assert ("lxc.time.offset.boot", "-3600s") in items
    assert ("lxc.time.offset.monotonic", "250ns") in items


def test_propagation_root_first_then_each_mount():
    cfg = {"linux": {"rootfsPropagation": "private"},
           "mounts": [{"destination": "/a", "type": "bind", "source": "/x", "options": ["rbind", "rshared"]},
                      {"destination": "/b", "type": "tmpfs", "source": "tmpfs"},
                      {"destination": "/c/../d", "type": "bind", "source": "/y", "options": ["slave"]}]}
    assert propagation(cfg) == [("/", MS_PRIVATE | MS_REC), ("/a", MS_SHARED | MS_REC), ("/d", MS_SLAVE)]
    assert propagation({}) == [("/", MS_SLAVE | MS_REC)]  # runc's default: the host's mounts come in, none go out
    with pytest.raises(TranslateError, match="more than one propagation"):
        propagation({"mounts": [{"destination": "/a", "options": ["shared", "private"]}]})


def test_mount_label_goes_to_fresh_filesystems_only():
    cfg = {"linux": {"mountLabel": "system_u:object_r:container_file_t:s0:c1,c2"},
           "mounts": [{"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
                      {"destination": "/data", "type": "bind", "source": "/", "options": ["rbind"]}]}
    run, data = [v for k, v in mounts(cfg, ctx(), lambda p: "dir")]
    assert 'context="system_u:object_r:container_file_t:s0:c1,c2"' in run
    assert "context" not in data


def test_placement_is_from_the_root():
    """liblxc takes lxc.cgroup.dir.* below its base; relative=1 makes that the monitor's own cgroup,
    which lxcri-monitor makes the root (an absolute cgroupsPath is from the root)."""
    items = dict(placement(ctx()))
    assert items["lxc.cgroup.relative"] == "1"
    assert items["lxc.cgroup.dir.container"] == "lxcri/c1"
    assert items["lxc.cgroup.dir.monitor"] == "lxcri.monitor/c1"


def test_a_new_v1_cpuset_gets_its_parents_values_unless_the_config_sets_them():
    c = ctx()
    c.controllers = {"cpuset": 1, "memory": 1}
    c.cpuset = {"cpuset.cpus": "0-3", "cpuset.mems": "0"}
    assert resources({}, c) == [("lxc.cgroup.cpuset.cpus", "0-3"), ("lxc.cgroup.cpuset.mems", "0")]
    got = resources({"linux": {"resources": {"cpu": {"cpus": "1"}, "memory": {"limit": 0}}}}, c)
    assert got == [("lxc.cgroup.cpuset.mems", "0"), ("lxc.cgroup.cpuset.cpus", "1")]  # the config's cpus, alone

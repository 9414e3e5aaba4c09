"""lxcconf.lxcfs: when the views are wanted, and the binds it asks liblxc for."""

from __future__ import annotations

import re

import pytest

from lxcri.errors import TranslateError
from lxcri.lxcconf import lxcfs

INFO = ("35 27 0:40 / /var/lib/lxcfs rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0\n"
        "36 27 0:41 / /srv/my\\040lxcfs rw - fuse.lxcfs lxcfs rw\n"
        "37 27 0:42 / /tmp/fake rw - tmpfs tmpfs rw\n")


@pytest.mark.parametrize(("annotations", "default", "want"), [
    ({}, False, False), ({}, True, True),
    ({lxcfs.ANNOTATION: "true"}, False, True), ({lxcfs.ANNOTATION: "False"}, True, False),
])
def test_wanted(annotations, default, want):
    assert lxcfs.wanted({"annotations": annotations}, default) is want


def test_a_bad_value_names_the_annotation():
    with pytest.raises(TranslateError, match=re.escape(lxcfs.ANNOTATION)):
        lxcfs.wanted({"annotations": {lxcfs.ANNOTATION: "sometimes"}}, False)


def test_only_an_lxcfs_mount_counts():
    assert lxcfs.mounted_at("/var/lib/lxcfs/", INFO)
    assert lxcfs.mounted_at("/srv/my lxcfs", INFO)  # mountinfo escapes the blank
    assert not lxcfs.mounted_at("/tmp/fake", INFO)  # a tmpfs there is not lxcfs
    assert not lxcfs.mounted_at("/var/lib", INFO)


def test_binds_for_the_views_lxcfs_serves():
    items = lxcfs.mounts("/srv/my lxcfs", INFO, {"proc/meminfo", "sys/devices/system/cpu/online"})
    assert items == [
        ("lxc.mount.entry", "/srv/my\\040lxcfs/proc/meminfo proc/meminfo none bind 0 0"),
        ("lxc.mount.entry",
         "/srv/my\\040lxcfs/sys/devices/system/cpu/online sys/devices/system/cpu/online none bind 0 0"),
    ]


def test_not_mounted_is_an_error_naming_the_path():
    with pytest.raises(TranslateError, match="no lxcfs is mounted at /nowhere"):
        lxcfs.mounts("/nowhere", INFO, set(lxcfs.FILES))

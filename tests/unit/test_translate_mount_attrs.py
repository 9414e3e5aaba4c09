"""mounts' r* options -> the mount_setattr calls the init helper makes (lxcconf/mounts.py)."""

from __future__ import annotations

import pytest

from lxcri.errors import TranslateError
from lxcri.lxcconf.mounts import recursive_attrs

RDONLY, NOSUID, ATIME, NOATIME = 0x1, 0x2, 0x70, 0x10


def cfg(*mounts):
    return {"mounts": [{"destination": d, "type": "bind", "source": "/x", "options": o} for d, o in mounts]}


def test_rro_is_a_recursive_read_only():
    assert recursive_attrs(cfg(("/data", ["rbind", "rro"]))) == [("/data", RDONLY, 0, True)]


def test_no_recursive_option_no_call():
    assert recursive_attrs(cfg(("/data", ["rbind", "ro", "nosuid"]))) == []


def test_the_last_of_opposite_options_wins():
    assert recursive_attrs(cfg(("/d", ["rro", "rrw"]))) == [("/d", 0, RDONLY, True)]
    assert recursive_attrs(cfg(("/d", ["rrw", "rro"]))) == [("/d", RDONLY, 0, True)]


def test_an_atime_mode_clears_the_others():
    assert recursive_attrs(cfg(("/d", ["rnoatime", "rnosuid"]))) == [("/d", NOATIME | NOSUID, ATIME, True)]
    assert recursive_attrs(cfg(("/d", ["rnoatime", "rrelatime"]))) == [("/d", 0, ATIME, True)]


def test_a_later_mount_below_gets_the_flag_back_unless_it_asked_for_it():
    got = recursive_attrs(cfg(("/d", ["rro", "rnosuid"]), ("/d/w", []), ("/d/r", ["ro"]), ("/dx", []),
                              ("/d/s", ["nosuid", "rro"])))
    assert got == [("/d", RDONLY | NOSUID, 0, True), ("/d/w", 0, RDONLY | NOSUID, False),
                   ("/d/r", 0, NOSUID, False), ("/d/s", RDONLY, 0, True)]


def test_unsupported_recursive_options_are_refused():
    from lxcri.lxcconf.mounts import mounts

    with pytest.raises(TranslateError, match=r"mounts\[0\]\.options: 'ratime'"):
        mounts({"mounts": [{"destination": "/d", "type": "tmpfs", "source": "tmpfs", "options": ["ratime"]}]},
               None, lambda p: "dir")  # type: ignore[arg-type]

"""cgroup v1, v2 and hybrid hosts behind one interface: find, freeze, list, move, remove."""

from lxcri.cgroups.fs import Cgroup, host_version

__all__ = ["Cgroup", "host_version"]

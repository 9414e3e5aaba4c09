"""linux.resources -> cgroup writes, for a v1 host, a pure v2 host (which cannot run here) and hybrid."""

from __future__ import annotations

import pytest

from lxcri.cgroups.resources import blkio_to_io_weight, shares_to_weight, writes
from lxcri.errors import CgroupError

V1 = dict.fromkeys(("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer"), 1)
V2 = dict.fromkeys(("memory", "cpu", "cpuset", "pids", "io", "hugetlb"), 2)
HYBRID = {**V1, "hugetlb": 2}

RES = {
    "memory": {"limit": 100 << 20, "reservation": 50 << 20, "swap": 200 << 20},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 64},
    "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
}


def files(ws):
    return {f: v for _, _, f, v in ws}


def test_v1():
    got = files(writes({k: v for k, v in RES.items() if k != "hugepageLimits"}, V1))
    assert got == {
        "memory.limit_in_bytes": str(100 << 20), "memory.soft_limit_in_bytes": str(50 << 20),
        "memory.memsw.limit_in_bytes": str(200 << 20), "cpu.shares": "1024", "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "50000", "cpuset.cpus": "0-1", "cpuset.mems": "0", "pids.max": "64",
        "blkio.weight": "500", "blkio.throttle.read_bps_device": "8:0 1048576",
    }


def test_v2():
    got = files(writes(RES, V2))
    assert got["memory.max"] == str(100 << 20)
    assert got["memory.low"] == str(50 << 20)
    assert got["memory.swap.max"] == str(100 << 20)  # OCI swap is memory+swap; v2 limits swap alone
    assert got["cpu.weight"] == str(shares_to_weight(1024)) == "39"
    assert got["cpu.max"] == "50000 100000"
    assert got["pids.max"] == "64"
    assert got["io.weight"] == f"default {blkio_to_io_weight(500)}"
    assert got["io.max"] == "8:0 rbps=1048576"
    assert got["hugetlb.2MB.max"] == str(4 << 20)


def test_hybrid_puts_each_controller_where_it_lives():
    ws = writes(RES, HYBRID)
    assert ("hugetlb", 2, "hugetlb.2MB.max", str(4 << 20)) in ws
    assert ("memory", 1, "memory.limit_in_bytes", str(100 << 20)) in ws


def test_unlimited_values():
    assert files(writes({"memory": {"limit": -1}, "pids": {"limit": 0}}, V2)) == {"memory.max": "max",
                                                                               "pids.max": "max"}
    assert files(writes({"cpu": {"quota": -1, "period": 100000}}, V2)) == {"cpu.max": "max 100000"}


@pytest.mark.parametrize("res,where,msg", [
    ({"memory": {"swappiness": 10}}, V2, "no per-cgroup swappiness"),
    ({"memory": {"kernel": 1}}, V2, "no kernel memory"),
    ({"memory": {"swap": 10, "limit": 20}}, V2, "must not be below"),
    ({"network": {"classID": 1}}, V1, "no net_cls"),
    ({"hugepageLimits": [{"pageSize": "huge", "limit": 1}]}, V2, "pageSize"),
    ({"unified": {"../x": "1"}}, V2, "not a cgroup v2 file"),
    ({"unified": {"memory.high": "1"}}, V1, "not on cgroup v2"),
    ({"cpu": {"cpus": "0;rm"}}, V1, "like 0-3,5"),
])
def test_refusals(res, where, msg):
    with pytest.raises(CgroupError, match=msg):
        writes(res, where)


def test_v1_weights_go_to_bfq_where_cfq_is_gone():
    blk = {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 700}]}}
    assert files(writes(blk, {**V1, "blkio.bfq": 1})) == {"blkio.bfq.weight": "300",
                                                          "blkio.bfq.weight_device": "8:0 700"}
    assert files(writes(blk, V1)) == {"blkio.weight": "300", "blkio.weight_device": "8:0 700"}

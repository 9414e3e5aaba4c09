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
    # as runc: memory -1 with swap unset lifts swap too; a negative pids limit is "max"
    assert files(writes({"memory": {"limit": -1}, "pids": {"limit": -1}}, V2)) == {
        "memory.max": "max", "memory.swap.max": "max", "pids.max": "max"}
    assert writes({"memory": {"limit": -1}}, {**V1, "memory.memsw": 1}) == [
        ("memory", 1, "memory.memsw.limit_in_bytes", "-1"), ("memory", 1, "memory.limit_in_bytes", "-1")]
    assert files(writes({"memory": {"limit": -1}}, V1)) == {"memory.limit_in_bytes": "-1"}  # no swap accounting
    assert files(writes({"cpu": {"quota": -1, "period": 100000}}, V2)) == {"cpu.max": "max 100000"}


# Every numeric resource CRI-O (and the others) may write as 0 for "unset": runc writes nothing
# for these, so neither does lxcri, on either cgroup version.
ZEROS = [
    {"cpu": {"shares": 0}}, {"cpu": {"quota": 0}}, {"cpu": {"period": 0}}, {"cpu": {"quota": 0, "period": 0}},
    {"cpu": {"realtimePeriod": 0, "realtimeRuntime": 0}}, {"cpu": {"cpus": "", "mems": ""}},
    {"memory": {"limit": 0}}, {"memory": {"reservation": 0}}, {"memory": {"swap": 0}},
    {"memory": {"kernel": 0, "kernelTCP": 0}}, {"pids": {"limit": 0}},
    {"blockIO": {"weight": 0, "leafWeight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]}},
    {"network": {"classID": 0}},
]


@pytest.mark.parametrize("res", ZEROS, ids=lambda r: ",".join(f"{k}.{f}" for k, v in r.items() for f in v))
@pytest.mark.parametrize("where", [V1, V2], ids=["v1", "v2"])
def test_zero_is_unset(res, where):
    assert writes(res, {**where, "net_cls": 1}) == []


def test_zero_period_keeps_the_quota():
    """CRI-O's resources for a container with a CPU limit and no period: the quota alone."""
    assert files(writes({"cpu": {"shares": 2, "quota": 50000, "period": 0}}, V1)) == {
        "cpu.shares": "2", "cpu.cfs_quota_us": "50000"}
    assert files(writes({"cpu": {"quota": 50000, "period": 0}}, V2)) == {"cpu.max": "50000"}
    assert files(writes({"cpu": {"quota": 0, "period": 50000}}, V2)) == {"cpu.max": "max 50000"}


def test_zero_keeps_its_meaning_where_runc_writes_it():
    """swappiness 0, cpu.idle 0, hugetlb 0 and throttle rate 0 are values, not "unset"."""
    got = files(writes({"memory": {"swappiness": 0}, "cpu": {"idle": 0},
                        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]}}, V1))
    assert got == {"memory.swappiness": "0", "cpu.idle": "0", "blkio.throttle.read_bps_device": "8:0 0"}
    assert files(writes({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}, V2)) == {"hugetlb.2MB.max": "0"}


@pytest.mark.parametrize("res,where,msg", [
    ({"memory": {"swappiness": 10}}, V2, "no per-cgroup swappiness"),
    ({"memory": {"kernel": 1}}, V2, "no kernel memory"),
    ({"memory": {"swap": 10, "limit": 20}}, V2, "must not be below"),
    ({"network": {"classID": 1}}, V1, "no net_cls"),
    ({"hugepageLimits": [{"pageSize": "huge", "limit": 1}]}, V2, "pageSize"),
    ({"unified": {"../x": "1"}}, V2, "not a cgroup v2 file"),
    ({"unified": {"memory.high": "1"}}, V1, "not on cgroup v2"),
    ({"cpu": {"cpus": "0;rm"}}, V1, "like 0-3,5"),
    ({"cpu": {"period": -5}}, V1, "at least 0"),
    ({"cpu": {"shares": -1}}, V2, "at least 0"),
    ({"blockIO": {"weight": 5}}, V1, "at least 10"),
    ({"cpu": {"period": "100000"}}, V1, "must be an integer"),
])
def test_refusals(res, where, msg):
    with pytest.raises(CgroupError, match=msg):
        writes(res, where)


def test_v1_weights_go_to_bfq_where_cfq_is_gone():
    blk = {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 700}]}}
    assert files(writes(blk, {**V1, "blkio.bfq": 1})) == {"blkio.bfq.weight": "300",
                                                          "blkio.bfq.weight_device": "8:0 700"}
    assert files(writes(blk, V1)) == {"blkio.weight": "300", "blkio.weight_device": "8:0 700"}

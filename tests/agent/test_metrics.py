"""The agent's /metrics, scraped over HTTP as Prometheus would, with real lxcri calls behind it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lxcri_agent import health, metrics
from lxcri_testlib import LXCRI


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def served(tmp_path: Path, lxcri, make_bundle) -> Iterator[tuple[str, Path, object]]:
    log = tmp_path / "run" / "calls.log"
    calls = metrics.CallLog(log)
    calls.ensure()
    node = metrics.NodeCollector(metrics.runtime_lister(LXCRI, [str(lxcri.root)]), lambda: "0.1.0-test",
                                 tmp_path / "no-lxcfs")
    m = metrics.Metrics(calls, node)
    server = health.serve("127.0.0.1:0", health.Health(), m.render)
    try:
        yield server_address(server), log, lxcri
    finally:
        server.shutdown()
        server.server_close()


def server_address(server) -> str:
    host, port = server.server_address[:2]
    return f"{host}:{port}"


def test_calls_containers_and_node_facts(served, make_bundle, tmp_path):
    address, log, lxcri = served
    before = scrape(address)
    key_ok = ("lxcri_runtime_call_duration_seconds_count", (("command", "create"), ("result", "ok")))
    key_err = ("lxcri_runtime_call_duration_seconds_count", (("command", "state"), ("result", "error")))
    env = {**os.environ, "LXCRI_CALL_LOG": str(log)}
    b = make_bundle(["sleep", "30"])
    cid = lxcri.new_id("metrics")
    assert lxcri.create(b, cid, env=env).returncode == 0
    assert lxcri("state", "no-such-container", env=env).returncode != 0
    got = scrape(address)
    assert got[key_ok] - before.get(key_ok, 0) == 1
    assert got[key_err] - before.get(key_err, 0) == 1
    assert got[("lxcri_containers", (("status", "created"),))] == 1
    assert got[("lxcri_agent_tree_info", (("version", "0.1.0-test"),))] == 1
    assert got[("lxcri_lxcfs_up", ())] == 0
    # the scrape's own listing is not counted as a runtime call
    assert scrape(address)[key_ok] == got[key_ok]
    lxcri("delete", "--force", cid, check=True)
    assert scrape(address)[("lxcri_containers", (("status", "created"),))] == 0


def test_events_the_agent_records(served):
    address, _, _ = served
    metrics.note_smoke(0.25, True)
    metrics.note_cri_restart("containerd", "restart")
    metrics.note_installed(True)
    got = scrape(address)
    assert got[("lxcri_agent_smoke_duration_seconds", ())] == 0.25
    assert got[("lxcri_agent_smoke_success", ())] == 1
    assert got[("lxcri_agent_installed", ())] == 1
    assert got[("lxcri_agent_cri_restarts_total", (("action", "restart"), ("service", "containerd")))] >= 1


def test_a_partial_line_waits_for_the_next_scrape(tmp_path):
    log = tmp_path / "calls.log"
    c = metrics.CallLog(log)
    c.ensure()
    with open(log, "a") as f:
        f.write("start 0 1500\nkill 0 12")
    assert c.drain() == 1
    with open(log, "a") as f:
        f.write("00\ngarbage line here\n")
    assert c.drain() == 1  # `kill 0 1200`, the garbage is skipped


def test_lxcfs_up_with_a_real_lxcfs(tmp_path):
    exe = shutil.which("lxcfs")
    if exe is None:
        pytest.fail("lxcfs is not installed (scripts/setup.sh installs it)")
    mnt = tmp_path / "lxcfs"
    mnt.mkdir()
    p = subprocess.Popen([exe, "-f", "-p", str(tmp_path / "pid"), str(mnt)])
    try:
        end = time.time() + 10
        while not metrics.lxcfs_up(mnt):
            assert p.poll() is None and time.time() < end, "lxcfs did not come up"
            time.sleep(0.05)
        p.kill()
        p.wait()
        assert not metrics.lxcfs_up(mnt)  # dead: the mount stays, reads fail
    finally:
        if p.poll() is None:
            p.kill()
        subprocess.run(["umount", "-l", str(mnt)], stderr=subprocess.DEVNULL)

"""The operator against the API (the fake, or a real cluster with KUBECONFIG): what it writes,
how often, and how it survives conflicts, API errors and watch restarts."""

from __future__ import annotations

from typing import Any

import pytest

from lxcri_agent.kube.api import ApiError, Expired
from lxcri_agent.operator.labels import NOT_READY, READY
from lxcri_agent.operator.reconcile import EVENT_NAMESPACE
from lxcri_agent.report.model import Report, owned_annotation, report_annotation

OK = Report(ready=True, cgroup="v2", seccomp=True, userns=True, liblxc="5.0.2", lxcri="0.1.0")
BROKEN = Report(ready=False, reason="smoke create failed: no cgroup", cgroup="v2")


def report(cluster: Any, name: str, r: Report | None) -> None:
    cluster.set_annotation(name, report_annotation(cluster.prefix), r.to_json() if r else None)


def test_report_becomes_labels_with_one_patch_and_one_event(setup: Any) -> None:
    cluster, _rec, delivery = setup
    n = cluster.add_node("a", labels={"keep": "me"})
    delivery.settle()
    report(cluster, n, OK)
    before = dict(cluster.api.requests)
    delivery.settle()
    assert cluster.api.requests["patch"] - before.get("patch", 0) == 1
    assert cluster.api.requests["event"] - before.get("event", 0) == 1
    labels = cluster.labels(n)
    assert labels[f"{cluster.prefix}/runtime"] == READY
    assert labels[f"{cluster.prefix}/liblxc"] == "5.0.2"
    assert labels["keep"] == "me"
    ev = cluster.api.events[-1]
    assert ev["reason"] == "LxcriReady" and ev["involvedObject"]["name"] == n


def test_steady_state_and_replays_cost_no_writes(setup: Any) -> None:
    cluster, rec, delivery = setup
    names = [cluster.add_node(str(i), annotations={report_annotation(cluster.prefix): OK.to_json()})
             for i in range(5)]
    delivery.settle()
    writes = cluster.api.writes
    for _ in range(3):
        delivery.pump()
    for name in names:  # a full replay, as after a watch restart
        rec.on_event(None, cluster.node(name))
    assert cluster.api.writes == writes


def test_readiness_loss_posts_a_warning_and_keeps_features(setup: Any) -> None:
    cluster, _rec, delivery = setup
    n = cluster.add_node("b", annotations={report_annotation(cluster.prefix): OK.to_json()})
    delivery.settle()
    report(cluster, n, BROKEN)
    delivery.settle()
    labels = cluster.labels(n)
    assert labels[f"{cluster.prefix}/runtime"] == NOT_READY
    assert f"{cluster.prefix}/liblxc" not in labels  # the broken report does not know it any more
    ev = cluster.api.events[-1]
    assert ev["type"] == "Warning" and "no cgroup" in ev["message"]


def test_withdrawn_report_prunes_owned_labels_only(setup: Any) -> None:
    cluster, _rec, delivery = setup
    mine = f"{cluster.prefix}/admin-note"
    n = cluster.add_node("c", labels={mine: "x"},
                         annotations={report_annotation(cluster.prefix): OK.to_json()})
    delivery.settle()
    report(cluster, n, None)
    delivery.settle()
    labels = cluster.labels(n)
    assert {k for k in labels if k.startswith(cluster.prefix)} == {mine}
    assert owned_annotation(cluster.prefix) not in cluster.annotations(n)
    assert cluster.api.events[-1]["reason"] == "LxcriRemoved"


def test_conflict_rereads_and_converges(setup: Any) -> None:
    cluster, rec, delivery = setup
    n = cluster.add_node("d")
    delivery.settle()
    report(cluster, n, OK)
    # between the operator's read and its patch, the agent publishes a newer report: 409
    cluster.api.before_patch = lambda name: report(cluster, name, BROKEN)
    delivery.pump()
    assert cluster.api.requests["get"] >= 1  # re-read after the conflict
    delivery.settle()
    assert cluster.labels(n)[f"{cluster.prefix}/runtime"] == NOT_READY
    assert not rec.pending


def test_api_errors_are_retried_until_they_pass(setup: Any) -> None:
    cluster, rec, delivery = setup
    n = cluster.add_node("e")
    delivery.settle()
    report(cluster, n, OK)
    cluster.api.fail("patch", ApiError(500, "etcdserver: request timed out"), times=2)
    delivery.pump()
    assert rec.pending == {n}
    assert f"{cluster.prefix}/runtime" not in cluster.labels(n)
    rec.retry_pending()  # second failure: still pending
    assert rec.pending == {n}
    rec.retry_pending()
    assert not rec.pending
    assert cluster.labels(n)[f"{cluster.prefix}/runtime"] == READY


def test_failed_event_does_not_block_labels(setup: Any) -> None:
    cluster, rec, delivery = setup
    n = cluster.add_node("f")
    delivery.settle()
    report(cluster, n, OK)
    cluster.api.fail("event", ApiError(403, "forbidden"))
    delivery.settle()
    assert cluster.labels(n)[f"{cluster.prefix}/runtime"] == READY
    assert not rec.pending


def test_deleted_node_is_forgotten(setup: Any) -> None:
    cluster, rec, delivery = setup
    n = cluster.add_node("g")
    delivery.settle()
    report(cluster, n, OK)
    cluster.api.fail("patch", ApiError(503, "unavailable"))
    delivery.pump()
    assert rec.pending == {n}
    cluster.delete_node(n)
    rec.retry_pending()  # 404 on re-read: nothing left to do
    assert not rec.pending


def test_watch_restart_relists_and_catches_up_without_extra_writes(setup: Any) -> None:
    cluster, _rec, delivery = setup
    names = [cluster.add_node(f"w{i}", annotations={report_annotation(cluster.prefix): OK.to_json()})
             for i in range(4)]
    delivery.settle()
    writes = cluster.api.writes
    report(cluster, names[2], BROKEN)  # happens while the watch is down...
    cluster.api.fail("watch", Expired())  # ...and the watch comes back with 410 Gone
    relists = delivery.relists
    delivery.settle()
    assert delivery.relists == relists + 1
    assert cluster.api.writes - writes == 2  # one patch and one event, for the one change
    assert cluster.labels(names[2])[f"{cluster.prefix}/runtime"] == NOT_READY


def test_watch_errors_other_than_expiry_surface(setup: Any) -> None:
    cluster, _rec, delivery = setup
    cluster.add_node("x")
    delivery.settle()
    cluster.api.fail("watch", ApiError(500, "boom"))
    with pytest.raises(ApiError):
        delivery.pump()  # kopf backs off and re-watches; the test driver just reports it
    delivery.pump()


def test_events_go_to_the_node_event_namespace(setup: Any) -> None:
    cluster, _rec, delivery = setup
    n = cluster.add_node("y", annotations={report_annotation(cluster.prefix): OK.to_json()})
    delivery.settle()
    assert EVENT_NAMESPACE == "default"
    if cluster.fake is not None:
        assert cluster.fake.events[-1]["namespace"] == "default"
        assert cluster.fake.events[-1]["involvedObject"]["name"] == n

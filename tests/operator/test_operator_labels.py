"""The labelling policy as a pure function: no API, just Node bodies in and patches out."""

from __future__ import annotations

from typing import Any

from fakekube.nodes import merge_patch
from lxcri_agent.operator.labels import NOT_READY, READY, desired_labels, label_value, plan
from lxcri_agent.report.model import Report

P = "lxcri.linuxcontainers.org"
REPORT = f"{P}/report"
OWNED = f"{P}/owned-labels"
FULL = Report(ready=True, cgroup="hybrid", seccomp=True, userns=True, apparmor=False, selinux=False,
              liblxc="5.0.2", lxcri="0.1.0")


def node(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "n1", "resourceVersion": "7", "labels": labels or {},
                         "annotations": annotations or {}}}


def converge(body: dict[str, Any]) -> dict[str, Any]:
    p = plan(body, P)
    return body if p is None else merge_patch(body, p.patch)


def test_full_report_yields_readiness_and_feature_labels() -> None:
    assert desired_labels(FULL, P) == {
        f"{P}/runtime": READY, f"{P}/cgroup": "hybrid", f"{P}/seccomp": "true", f"{P}/userns": "true",
        f"{P}/apparmor": "false", f"{P}/selinux": "false", f"{P}/liblxc": "5.0.2", f"{P}/version": "0.1.0",
    }


def test_unknown_features_get_no_label_rather_than_a_guess() -> None:
    broken = Report(ready=False, reason="runtime not installed")
    assert desired_labels(broken, P) == {f"{P}/runtime": NOT_READY}


def test_first_plan_sets_labels_records_ownership_and_pins_the_version() -> None:
    p = plan(node(annotations={REPORT: FULL.to_json()}), P)
    assert p is not None and p.was is None and p.now == READY and p.readiness_changed
    meta = p.patch["metadata"]
    assert meta["resourceVersion"] == "7"
    assert meta["labels"][f"{P}/runtime"] == READY
    assert meta["annotations"][OWNED].split(",") == sorted(desired_labels(FULL, P))


def test_converged_node_needs_no_request() -> None:
    body = converge(node(annotations={REPORT: FULL.to_json()}))
    assert plan(body, P) is None


def test_lost_feature_is_pruned_and_only_that() -> None:
    body = converge(node(labels={"kubernetes.io/hostname": "n1"}, annotations={REPORT: FULL.to_json()}))
    fewer = Report(ready=True, cgroup="hybrid", seccomp=True)
    body["metadata"]["annotations"][REPORT] = fewer.to_json()
    p = plan(body, P)
    assert p is not None and not p.readiness_changed
    removed = {k for k, v in p.patch["metadata"]["labels"].items() if v is None}
    assert removed == {f"{P}/userns", f"{P}/apparmor", f"{P}/selinux", f"{P}/liblxc", f"{P}/version"}
    after = converge(body)
    assert after["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert plan(after, P) is None


def test_foreign_labels_under_the_prefix_are_never_removed() -> None:
    body = converge(node(labels={f"{P}/team-choice": "x"}, annotations={REPORT: FULL.to_json()}))
    del body["metadata"]["annotations"][REPORT]  # the agent withdrew its report
    after = converge(body)
    assert after["metadata"]["labels"] == {f"{P}/team-choice": "x"}
    assert OWNED not in after["metadata"]["annotations"]


def test_withdrawn_report_removes_readiness() -> None:
    body = converge(node(annotations={REPORT: FULL.to_json()}))
    del body["metadata"]["annotations"][REPORT]
    p = plan(body, P)
    assert p is not None and p.was == READY and p.now is None


def test_unreadable_report_means_not_ready() -> None:
    bad = ("{", '{"v": 99, "ready": true}', '{"v": 1, "ready": "yes"}',
           '{"v": 1, "ready": true, "seccomp": 1}')
    for text in bad:
        p = plan(node(annotations={REPORT: text}), P)
        assert p is not None and p.now == NOT_READY and "unreadable report" in p.reason


def test_newer_report_fields_are_ignored() -> None:
    text = '{"v":1,"ready":true,"gpu":"yes"}'
    assert Report.from_json(text) == Report(ready=True)


def test_label_values_are_made_valid() -> None:
    assert label_value("5.0.2") == "5.0.2"
    assert label_value("6.0.0~git+abc") == "6.0.0-git-abc"
    assert label_value("~~~") is None
    assert label_value("x" * 100) == "x" * 63


def test_admin_changed_label_is_set_back() -> None:
    body = converge(node(annotations={REPORT: FULL.to_json()}))
    body["metadata"]["labels"][f"{P}/runtime"] = NOT_READY
    p = plan(body, P)
    assert p is not None and p.patch["metadata"]["labels"] == {f"{P}/runtime": READY}
    assert "annotations" not in p.patch["metadata"]


def test_report_json_is_canonical() -> None:
    assert FULL.to_json() == Report.from_json(FULL.to_json()).to_json()
    assert Report(ready=True).to_json() == '{"ready":true,"v":1}'


def test_capability_labels_for_system_userns_and_lxcfs_pods() -> None:
    r = Report(ready=True, userns=True, idmap_mounts=False, system_containers=True, lxcfs=True)
    got = desired_labels(r, "p")
    assert got["p/system-containers"] == "true" and got["p/lxcfs"] == "true"
    assert got["p/userns-pods"] == "false"  # user namespaces alone do not run hostUsers: false pods
    assert desired_labels(Report(ready=True, userns=True, idmap_mounts=True), "p")["p/userns-pods"] == "true"
    assert "p/userns-pods" not in desired_labels(Report(ready=True, userns=True), "p")  # unknown: no label

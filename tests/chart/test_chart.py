"""The chart, rendered by the real Helm engine and checked against the Kubernetes API schemas
and against what the design asks of each object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from chartkit import CHART, Objects, one

KUBE = "1.33.0"  # the schema version the acceptance check validates against
VARIANTS: list[dict[str, Any]] = [
    {},
    {"cri": "crio"},
    {"cri": "containerd", "agent": {"smokeTest": False}},
    {"runtimeClass": {"overhead": {"cpu": "10m", "memory": "16Mi"},
                      "tolerations": [{"key": "lxcri", "operator": "Exists", "effect": "NoSchedule"}]}},
    {"operator": {"replicas": 2}, "labelPrefix": "lxcri.example.com", "logLevel": "debug"},
    {"operator": {"enabled": False}, "agent": {"restrictToOwnNode": False}},
    {"operator": {"peering": "", "replicas": 1}},
    {"lxcfs": {"enabled": False}, "metrics": {"scrapeAnnotations": False}, "uninstallHook": {"enabled": False}},
    {"lxcfs": {"path": "/srv/lxcfs"}, "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "p"}}}},
]


def test_lint_has_no_errors_or_warnings() -> None:
    report = helm.lint(CHART, strict=True)
    assert not report["errors"], report
    assert all(m["severity"] < 2 for m in report["messages"]), report


@pytest.mark.parametrize("values", VARIANTS, ids=lambda v: ",".join(sorted(v)) or "defaults")
def test_every_object_is_valid_kubernetes(render: Callable[..., Objects], values: dict[str, Any]) -> None:
    objects = render(values, tests=True)
    assert objects
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus Operator's CRD: not in the Kubernetes schemas (checked below)
        kubernetes_validate.validate(obj, KUBE, strict=True)


def test_default_objects(render: Callable[..., Objects]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in render())
    assert kinds == sorted([
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
        ("ServiceAccount", "lxcri-agent"), ("ServiceAccount", "lxcri-operator"),
        ("ClusterRole", "lxcri-agent"), ("ClusterRole", "lxcri-operator"),
        ("ClusterRoleBinding", "lxcri-agent"), ("ClusterRoleBinding", "lxcri-operator"),
        ("Role", "lxcri-agent"), ("RoleBinding", "lxcri-agent"),
        ("Role", "lxcri-operator-events"), ("RoleBinding", "lxcri-operator-events"),
        ("ValidatingAdmissionPolicy", "lxcri-agent-own-node"),
        ("ValidatingAdmissionPolicyBinding", "lxcri-agent-own-node"),
        ("DaemonSet", "lxcri-agent"), ("Deployment", "lxcri-operator"), ("RuntimeClass", "lxcri"),
        ("DaemonSet", "lxcri-lxcfs"),
        # the pre-delete hook (Helm runs it at uninstall; not in manifests/)
        ("ServiceAccount", "lxcri-uninstall"), ("ClusterRole", "lxcri-uninstall"),
        ("ClusterRoleBinding", "lxcri-uninstall"), ("Role", "lxcri-uninstall"), ("RoleBinding", "lxcri-uninstall"),
        ("Job", "lxcri-uninstall"),
    ])


def test_runtimeclass_selects_ready_nodes(render: Callable[..., Objects]) -> None:
    rc = one(render(), "RuntimeClass")
    assert rc["apiVersion"] == "node.k8s.io/v1" and rc["handler"] == "lxcri"
    assert rc["scheduling"]["nodeSelector"] == {"lxcri.linuxcontainers.org/runtime": "ready"}
    assert "overhead" not in rc
    rc = one(render({"labelPrefix": "lxcri.example.com", "runtimeClass": {"overhead": {"memory": "16Mi"}}}),
             "RuntimeClass")
    assert rc["scheduling"]["nodeSelector"] == {"lxcri.example.com/runtime": "ready"}
    assert rc["overhead"] == {"podFixed": {"memory": "16Mi"}}


def test_daemonset_contract(render: Callable[..., Objects]) -> None:
    ds = one(render(), "DaemonSet", "lxcri-agent")
    spec = ds["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "system-node-critical"
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    assert spec["terminationGracePeriodSeconds"] >= 120
    (c,) = spec["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["LXCRI_LABEL_PREFIX"]["value"] == "lxcri.linuxcontainers.org"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["serviceAccountName"] == "lxcri-agent"


def host_paths(objects: Objects) -> dict[str, str]:
    spec = one(objects, "DaemonSet", "lxcri-agent")["spec"]["template"]["spec"]
    return {v["hostPath"]["path"]: v["hostPath"]["type"] for v in spec["volumes"] if "hostPath" in v}


def test_host_mounts_are_narrow(render: Callable[..., Objects]) -> None:
    assert host_paths(render()) == {
        "/opt/lxcri": "DirectoryOrCreate", "/run/lxcri": "DirectoryOrCreate",
        "/var/lib/lxcri-agent": "DirectoryOrCreate", "/run/dbus": "DirectoryOrCreate",
        "/etc/crio": "DirectoryOrCreate", "/etc/containerd": "DirectoryOrCreate",
        "/run/lxc": "DirectoryOrCreate",  # liblxc's locks of the node's containers, cleaned on uninstall
    }
    crio = host_paths(render({"cri": "crio"}))
    assert crio["/etc/crio"] == "Directory" and "/etc/containerd" not in crio
    containerd = host_paths(render({"cri": "containerd"}))
    assert containerd["/etc/containerd"] == "Directory" and "/etc/crio" not in containerd
    moved = host_paths(render({"install": {"prefix": "/usr/local/lxcri", "runtimeRoot": "/run/lxcri",
                                           "stateDir": "/var/lib/lxcri-agent", "crioConfigDir": "/etc/crio",
                                           "containerdConfigDir": "/etc/containerd"}}))
    assert "/usr/local/lxcri" in moved and "/opt/lxcri" not in moved
    for path in host_paths(render()):
        assert path not in ("/", "/etc", "/run", "/var", "/var/lib", "/usr", "/sys", "/proc")


def test_privilege_follows_the_smoke_test(render: Callable[..., Objects]) -> None:
    def sc(values: dict[str, Any]) -> dict[str, Any]:
        ds = one(render(values), "DaemonSet", "lxcri-agent")
        sc: dict[str, Any] = ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        return sc

    assert sc({})["privileged"] is True
    narrow = sc({"agent": {"smokeTest": False}})
    assert narrow["privileged"] is False and narrow["allowPrivilegeEscalation"] is False
    assert narrow["capabilities"]["drop"] == ["ALL"]
    assert "SYS_ADMIN" not in narrow["capabilities"]["add"]


def rules(objects: Objects, kind: str, name: str) -> list[tuple[str, str, str, str]]:
    """Flatten RBAC rules to (group, resource, verb, resourceName) tuples."""
    out = []
    for r in one(objects, kind, name)["rules"]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    for n in r.get("resourceNames", ["*"]):
                        out.append((g, res, v, n))
    return out


def test_rbac_is_least_privilege(render: Callable[..., Objects]) -> None:
    objects = render()
    assert sorted(rules(objects, "ClusterRole", "lxcri-agent")) == [
        ("", "nodes", "get", "*"), ("", "nodes", "patch", "*")]
    assert sorted(rules(objects, "Role", "lxcri-agent")) == [("apps", "daemonsets", "get", "lxcri-agent")]
    op = rules(objects, "ClusterRole", "lxcri-operator")
    assert {(g, r, v) for g, r, v, _ in op if r == "nodes"} == {
        ("", "nodes", v) for v in ("get", "list", "watch", "patch")}
    assert {r for _, r, _, _ in op} == {"nodes", "clusterkopfpeerings"}
    assert ("kopf.dev", "clusterkopfpeerings", "patch", "lxcri") in op
    assert ("kopf.dev", "clusterkopfpeerings", "patch", "*") not in op
    events = one(objects, "Role", "lxcri-operator-events")
    assert events["metadata"]["namespace"] == "default"
    assert rules(objects, "Role", "lxcri-operator-events") == [("", "events", "create", "*")]
    for obj in objects:
        for rule in obj.get("rules", []):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    standalone = render({"operator": {"peering": ""}})
    assert {r for _, r, _, _ in rules(standalone, "ClusterRole", "lxcri-operator")} == {"nodes"}
    assert not [o for o in standalone if o["kind"] == "CustomResourceDefinition"]


def test_agent_may_only_write_its_own_node(render: Callable[..., Objects]) -> None:
    vap = one(render(), "ValidatingAdmissionPolicy")
    assert "system:serviceaccount:lxcri-system:lxcri-agent" in vap["spec"]["matchConditions"][0]["expression"]
    assert "authentication.kubernetes.io/node-name" in vap["spec"]["validations"][0]["expression"]
    binding = one(render(), "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == vap["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert not [o for o in render({"agent": {"restrictToOwnNode": False}})
                if o["kind"].startswith("ValidatingAdmissionPolicy")]


def test_operator_deployment(render: Callable[..., Objects]) -> None:
    dep = one(render(), "Deployment")
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["command"] == ["lxcri-operator"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["LXCRI_LABEL_PREFIX"] == "lxcri.linuxcontainers.org" and env["LXCRI_PEERING_NAME"] == "lxcri"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert not [o for o in render({"operator": {"enabled": False}}) if "operator" in o["metadata"]["name"]]


def test_replicas_without_peering_are_refused(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmError, match="peering"):
        chart.render({"operator": {"replicas": 2, "peering": ""}}, name="lxcri", namespace="x")


def test_helm_test_pod_runs_under_the_runtimeclass(render: Callable[..., Objects]) -> None:
    pod = one(render(tests=True), "Pod")
    assert pod["spec"]["runtimeClassName"] == "lxcri"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"


def test_notes_tell_how_to_verify(chart: helm.Chart) -> None:
    out = chart.render({}, name="lxcri", namespace="lxcri-system")
    notes = next(text for path, text in out.items() if path.endswith("NOTES.txt"))
    assert "kubectl get nodes -L lxcri.linuxcontainers.org/runtime" in notes
    assert "runtimeClassName: lxcri" in notes


@pytest.mark.parametrize("values, where", [
    ({"cri": "docker"}, "/cri"),
    ({"labelPrefix": "Not_A_Domain"}, "/labelPrefix"),
    ({"labelPrefix": "nodots"}, "/labelPrefix"),
    ({"install": {"prefix": "opt/lxcri"}}, "/install/prefix"),
    ({"install": {"prefix": "/opt/lxcri/"}}, "/install/prefix"),
    ({"logLevel": "verbose"}, "/logLevel"),
    ({"agent": {"healthPort": 70000}}, "/agent/healthPort"),
    ({"agent": {"reportInterval": 1}}, "/agent/reportInterval"),
    ({"agent": {"terminationGracePeriodSeconds": 5}}, "/agent/terminationGracePeriodSeconds"),
    ({"agent": {"tolerations": [{"operator": "Sometimes"}]}}, "/agent/tolerations/0/operator"),
    ({"agent": {"resources": {"requests": {"memory": "lots"}}}}, "/agent/resources/requests/memory"),
    ({"agent": {"smokeTest": "yes"}}, "/agent/smokeTest"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"runtimeClass": {"name": "LXCRI"}}, "/runtimeClass/name"),
    ({"operator": {"peering": "Bad Name"}}, "/operator/peering"),
    ({"nodeSelector": {"a": "b"}}, "nodeSelector"),  # a typo'd top-level key is an error, not ignored
])
def test_schema_rejects_bad_values(chart: helm.Chart, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as err:
        chart.render(values, name="lxcri", namespace="x")
    assert where in str(err.value)


def test_smoke_containers_lock_inside_the_pod(render: Callable[..., Objects]) -> None:
    """liblxc locks under /run/lxc: the pod's own (writable, not the host's) for its smoke containers."""
    spec = one(render(), "DaemonSet", "lxcri-agent")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/run/lxc"]]
    assert volumes[mounts["/host/run/lxc"]]["hostPath"]["path"] == "/run/lxc"


def test_cri_restart_command_value(render: Callable[..., Objects]) -> None:
    cmd = "nsenter -t 42 -m -u -i -n -p -- /state/cluster --state /state restart-cri"
    env = {e["name"]: e.get("value") for e in
           one(render({"agent": {"criRestartCommand": cmd}}), "DaemonSet", "lxcri-agent")["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["LXCRI_RESTART_CMDS"] == f"crio={cmd};containerd={cmd}"
    default = one(render(), "DaemonSet", "lxcri-agent")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "LXCRI_RESTART_CMDS" not in {e["name"] for e in default}


def test_operator_needs_no_passwd_entry(render: Callable[..., Objects]) -> None:
    objects = render()
    operator_env = {e["name"] for e in one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "USER" in operator_env  # kopf's peering asks for a user name: no passwd lookup


def test_metrics_scrape_annotations_and_service_monitor(render: Callable[..., Objects]) -> None:
    ds = one(render(), "DaemonSet", "lxcri-agent")
    notes = ds["spec"]["template"]["metadata"]["annotations"]
    assert notes == {"prometheus.io/scrape": "true", "prometheus.io/port": "8090", "prometheus.io/path": "/metrics"}
    assert not [o for o in render() if o["kind"] in ("Service", "ServiceMonitor")]  # off by default
    off = one(render({"metrics": {"scrapeAnnotations": False}, "agent": {"podAnnotations": {"a": "b"}}}),
              "DaemonSet", "lxcri-agent")
    assert off["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    objects = render({"metrics": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "p"}}},
                      "agent": {"healthPort": 9100}})
    svc, sm = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "lxcri", "app.kubernetes.io/component": "agent"}
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9100, "targetPort": "health"}]
    assert sm["metadata"]["labels"]["release"] == "p"
    assert svc["metadata"]["labels"] | sm["spec"]["selector"]["matchLabels"] == svc["metadata"]["labels"]
    assert sm["spec"]["endpoints"][0] | {"relabelings": None} == {"port": "metrics", "path": "/metrics",
                                                                   "interval": "15s", "relabelings": None}
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["lxcri-system"]}


def test_lxcfs_daemonset(render: Callable[..., Objects]) -> None:
    objects = render()
    agent = one(objects, "DaemonSet", "lxcri-agent")["spec"]["template"]["spec"]
    lx = one(objects, "DaemonSet", "lxcri-lxcfs")
    spec = lx["spec"]["template"]["spec"]
    # upgrades never restart lxcfs under running containers
    assert lx["spec"]["updateStrategy"] == {"type": "OnDelete"}
    # the same nodes as the agent
    for key in ("nodeSelector", "tolerations"):
        assert spec[key] == agent[key]
    assert spec["hostPID"] is True and spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert c["securityContext"]["privileged"] is True
    script = c["args"][0]
    assert "lxcfs -f --enable-cfs" in script and 'umount -l "$P"' in script and "trap" in script
    mount = next(m for m in c["volumeMounts"] if m["name"] == "lxcfs")
    assert mount == {"name": "lxcfs", "mountPath": "/var/lib/lxcfs", "mountPropagation": "Bidirectional"}
    assert {"name": "lxcfs", "hostPath": {"path": "/var/lib/lxcfs", "type": "DirectoryOrCreate"}} in spec["volumes"]
    # the agent tells the runtime where lxcfs is, and does not mount it (no propagation needed)
    env = {e["name"]: e.get("value") for e in agent["containers"][0]["env"]}
    assert env["LXCRI_LXCFS_PATH"] == "/var/lib/lxcfs"
    assert "/var/lib/lxcfs" not in host_paths(objects)
    moved = render({"lxcfs": {"path": "/srv/lxcfs"}})
    env = {e["name"]: e.get("value")
           for e in one(moved, "DaemonSet", "lxcri-agent")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LXCRI_LXCFS_PATH"] == "/srv/lxcfs"
    assert one(moved, "DaemonSet", "lxcri-lxcfs")["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "LXCFS_PATH", "value": "/srv/lxcfs"}]
    assert not [o for o in render({"lxcfs": {"enabled": False}}) if o["metadata"]["name"] == "lxcri-lxcfs"]
    caps = one(render({"agent": {"smokeTest": False}}), "DaemonSet", "lxcri-agent")[
        "spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]
    assert "SYS_PTRACE" in caps  # lxcfs health through /proc/PID/root


def test_uninstall_hook(render: Callable[..., Objects]) -> None:
    objects = render()
    hooks = [o for o in objects if (o["metadata"].get("annotations") or {}).get("helm.sh/hook")]
    assert {o["kind"] for o in hooks} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                          "RoleBinding", "Job"}
    for o in hooks:
        notes = o["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-delete"
        assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        # its identity exists before the Job runs
        assert int(notes["helm.sh/hook-weight"]) < 0 or o["kind"] == "Job"
    job = one(objects, "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "lxcri-uninstall"
    (c,) = pod["containers"]
    assert c["command"] == ["lxcri-agent"] and c["args"][0] == "leave-cluster"
    assert "--daemonset=lxcri-agent" in c["args"] and "--label-prefix=lxcri.linuxcontainers.org" in c["args"]
    assert c["securityContext"]["runAsNonRoot"] is True
    role = one(objects, "Role", "lxcri-uninstall")
    assert {"apiGroups": ["apps"], "resources": ["daemonsets"], "resourceNames": ["lxcri-agent"],
            "verbs": ["get", "delete"]} in role["rules"]
    assert one(objects, "ClusterRole", "lxcri-uninstall")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]}]
    assert not [o for o in render({"uninstallHook": {"enabled": False}}) if o["kind"] == "Job"]

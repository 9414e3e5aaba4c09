"""The pods test_pods.py creates in one batch: what each runs and what state it is waited for.

Each pod answers one question a user would ask of a runtime (does my exit code show, is my
memory limit applied, does the probe restart me ...). The `report-*` pods print their
credentials, seccomp mode and root filesystem mode; each runs under lxcri and under runc, and
the two reports must match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kube_cluster import BUSYBOX, HANDLER, Pod, phase, ready, restarted, terminated

CONFIG_VALUE = "hello from a configMap"
GREETING_FROM_HOST = "written on the node"
EXIT_CODE = 7
MEMORY_LIMIT = 64 * 1024 * 1024
CPU_QUOTA = "25000 100000"  # 250m at the default period
# drop everything, add three back: CapEff/CapBnd of root show exactly these bits
ADDED_CAPS = ["CHOWN", "KILL", "NET_BIND_SERVICE"]
ADDED_CAPS_MASK = (1 << 0) | (1 << 5) | (1 << 10)

REPORT = r"""
st() { sed -n "s/^$1:[[:space:]]*//p" /proc/self/status; }
echo "id=$(id -u):$(id -g):$(id -G)"
for k in CapInh CapPrm CapEff CapBnd CapAmb Seccomp NoNewPrivs; do echo "$k=$(st $k)"; done
if touch /written-by-report 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
if touch /scratch/w 2>/dev/null; then echo emptydir=rw; else echo emptydir=ro; fi
if unshare -U true 2>/dev/null; then echo unshare=allowed; else echo unshare=denied; fi
"""

# SIGTERM handler of the graceful pod: it writes to the hostPath, takes a second, then exits 0
GRACEFUL = (
    "trap 'echo handler-started > /host/term; sleep 1; echo handler-finished >> /host/term; exit 0' TERM; "
    "echo waiting; while :; do sleep 0.2; done"
)
SLEEP = "trap 'exit 0' TERM; while :; do sleep 0.2; done"
VOLUMES_A = (
    "echo from-a > /scratch/a; cat /cfg/greeting; echo; cat /host/hello || echo no-host-file; "
    "echo from-pod > /host/from-pod; "
    "if touch /cfg/x 2>/dev/null; then echo cfg=rw; else echo cfg=ro; fi; "
    + SLEEP
)
VOLUMES_B = "until [ -f /scratch/a ]; do sleep 0.2; done; cat /scratch/a; " + SLEEP


def container(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": BUSYBOX, "imagePullPolicy": "Never", "command": ["sh", "-c", script], **extra}


def pod(name: str, containers: list[dict[str, Any]], handler: str = HANDLER, **spec: Any) -> dict[str, Any]:
    spec.setdefault("terminationGracePeriodSeconds", 2)
    spec.setdefault("restartPolicy", "Always")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "lxcri-e2e"}},
            "spec": {"runtimeClassName": handler, "containers": containers, "automountServiceAccountToken": False,
                     **spec}}


def scratch() -> dict[str, Any]:
    return {"name": "scratch", "emptyDir": {}}


def report_pod(name: str, handler: str, security: dict[str, Any], pod_security: dict[str, Any]) -> dict[str, Any]:
    c = container("report", REPORT, securityContext=security,
                  volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])
    return pod(name, [c], handler, restartPolicy="Never", securityContext=pod_security, volumes=[scratch()])


def batch(host_dir: str) -> tuple[list[dict[str, Any]], dict[str, Callable[[Pod], bool]]]:
    """(objects to apply, the state each pod is waited for)."""
    runtime_default = {"seccompProfile": {"type": "RuntimeDefault"}}
    nonroot = {"runAsUser": 1000, "runAsGroup": 3000, "readOnlyRootFilesystem": True,
               "allowPrivilegeEscalation": False}
    caps = {"capabilities": {"drop": ["ALL"], "add": ADDED_CAPS}}
    host = {"name": "host", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "greeting"}, "data": {"greeting": CONFIG_VALUE}},
        pod("exit-code", [container("c", f"echo to-stdout; echo to-stderr >&2; exit {EXIT_CODE}")],
            restartPolicy="Never"),
        pod("unconfined", [container("report", REPORT, volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])],
            restartPolicy="Never", securityContext={"seccompProfile": {"type": "Unconfined"}}, volumes=[scratch()]),
        pod("limits", [container("c", SLEEP, resources={"limits": {"memory": "64Mi", "cpu": "250m"}})]),
        pod("volumes", [
            container("a", VOLUMES_A, volumeMounts=[{"name": "scratch", "mountPath": "/scratch"},
                                                    {"name": "cfg", "mountPath": "/cfg"},
                                                    {"name": "host", "mountPath": "/host"}]),
            container("b", VOLUMES_B, volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])],
            volumes=[scratch(), {"name": "cfg", "configMap": {"name": "greeting"}}, host]),
        pod("readiness", [container("c", "sleep 2; touch /tmp/ready; " + SLEEP, readinessProbe={
            "exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1})]),
        pod("never-ready", [container("c", SLEEP, readinessProbe={
            "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1})]),
        pod("liveness", [container("c", "touch /tmp/alive; sleep 3; rm /tmp/alive; " + SLEEP, livenessProbe={
            "exec": {"command": ["cat", "/tmp/alive"]}, "periodSeconds": 1, "failureThreshold": 1})]),
        pod("graceful", [container("c", GRACEFUL, volumeMounts=[{"name": "host", "mountPath": "/host"}])],
            terminationGracePeriodSeconds=30, volumes=[host]),
    ]
    for handler in (HANDLER, "runc"):
        objects.append(report_pod(f"report-nonroot-{handler}", handler, nonroot, runtime_default))
        objects.append(report_pod(f"report-caps-{handler}", handler, caps, runtime_default))
    waits: dict[str, Callable[[Pod], bool]] = {
        "exit-code": terminated, "unconfined": terminated, "limits": ready, "volumes": ready, "readiness": ready,
        "never-ready": phase("Running"), "liveness": restarted, "graceful": phase("Running"),
    }
    for o in objects:
        if o["metadata"]["name"].startswith("report-"):
            waits[o["metadata"]["name"]] = terminated
    return objects, waits

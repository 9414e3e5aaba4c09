"""Render charts/lxcri with its default values into manifests/lxcri.yaml.

    python hack/render_manifests.py          # rewrite manifests/
    python hack/render_manifests.py --check  # exit 1 if manifests/ is out of date

For `kubectl apply -f manifests/` users, who get exactly what `helm install` with default
values would create (minus the `helm test` pod, the pre-delete hook and NOTES), in an order
that applies cleanly in one pass: the CRD and identities first, workloads after their permissions.
The Helm engine runs in-process (helm-python-sdk): no helm binary, no cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "lxcri"
OUTPUT = ROOT / "manifests" / "lxcri.yaml"
RELEASE, NAMESPACE = "lxcri", "lxcri-system"
ORDER = ["CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
         "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "DaemonSet",
         "Deployment", "Service", "ServiceMonitor", "RuntimeClass"]
HEADER = f"""\
# Generated from charts/lxcri with default values by hack/render_manifests.py: do not edit.
# Equivalent to `helm install {RELEASE} charts/lxcri -n {NAMESPACE}`; create the namespace first:
#   kubectl create namespace {NAMESPACE} && kubectl apply -f manifests/
# Uninstall (the agents first, while their RBAC exists, as the chart's pre-delete hook does; docs/agent.md):
#   kubectl -n {NAMESPACE} delete daemonset lxcri-agent --cascade=foreground && kubectl delete -f manifests/
"""


def _all_objects(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [doc for path, text in sorted(out.items())
            if path.endswith((".yaml", ".yml")) and "/tests/" not in path
            for doc in yaml.safe_load_all(text) if doc]


def _hook(doc: dict[str, Any]) -> str:
    return str((doc["metadata"].get("annotations") or {}).get("helm.sh/hook", ""))


def hook_objects(hook: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects of one Helm hook (e.g. "pre-delete"), by weight: what Helm creates, in order,
    before that event. Not in manifests/: kubectl has no hooks."""
    docs = [d for d in _all_objects(values) if hook in _hook(d).split(",")]
    return sorted(docs, key=lambda d: int(d["metadata"]["annotations"].get("helm.sh/hook-weight", "0")))


def rendered_objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders (tests, hooks and NOTES excluded), in apply order."""
    docs = [d for d in _all_objects(values) if not _hook(d)]

    def rank(doc: dict[str, Any]) -> tuple[int, str]:
        kind = doc["kind"]
        return (ORDER.index(kind) if kind in ORDER else len(ORDER), doc["metadata"]["name"])

    return sorted(docs, key=rank)


def render() -> str:
    """The text manifests/lxcri.yaml must have."""
    # Helm labels carry the chart version, so a version bump shows up as drift, as it should
    body = "---\n".join(yaml.safe_dump(doc, sort_keys=False, width=100) for doc in rendered_objects())
    return HEADER + "---\n" + body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if manifests/ differs from the chart")
    args = ap.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python hack/render_manifests.py",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

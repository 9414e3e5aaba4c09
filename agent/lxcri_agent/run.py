"""``lxcri-agent run``, the DaemonSet's main: install, serve probes, wait for SIGTERM, then leave cleanly.

After SIGTERM the agent uninstalls only when it is really leaving the node: if its DaemonSet
still selects this node, a replacement pod is on its way (rolling update, pod restart) and
uninstalling would restart the CRI runtime twice for nothing. When the API cannot be asked,
lxcri stays installed: a leftover runtime is harmless, a needless restart of the node's CRI
runtime is not.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import health as health_mod
from . import log, metrics
from .errors import AgentError
from .hostfs import HostRoot
from .install import containerd, plan
from .install.reload import Reloader
from .install.settings import Settings
from .rollout import ClusterReader, KubeClusterReader, still_selected
from .settings import AgentSettings


@dataclass
class RunOptions:
    listen: str = "0.0.0.0:8090"
    node_name: str | None = None
    namespace: str | None = None
    daemonset: str | None = None
    tree: Path | None = None
    cri: str = "auto"
    smoke_binary: Path | None = None
    retry: float = 30.0  # after a failed install or an owed restart
    resync: float = 600.0  # re-check (a no-op when nothing drifted)
    metrics: bool = True  # serve /metrics on the health port
    # the rest of the agent's settings: the reporter's probe paths, label prefix and interval
    settings: AgentSettings = field(default_factory=AgentSettings)

    @classmethod
    def of(cls, a: AgentSettings, smoke_binary: Path | None) -> RunOptions:
        return cls(listen=a.listen, node_name=a.node_name, namespace=a.namespace, daemonset=a.daemonset,
                   tree=a.tree, cri=a.cri, smoke_binary=smoke_binary, settings=a)


def node_metrics(host: HostRoot, s: Settings) -> metrics.Metrics:
    """/metrics for this node: the call log the installed runtime writes (created here, so that the
    runtime starts appending: see lxcri/calllog.py), and the facts read at scrape time."""
    from . import treebuild

    calls = metrics.CallLog(host.path(s.call_log))
    root = s.runtime_root.rstrip("/")
    # CRI-O's containers are directly under the runtime root, containerd's shim adds its namespace
    roots = [str(host.path(r)) for r in (root, f"{root}/k8s.io")]

    def version() -> str | None:
        link = host.path(s.runtime_path)
        if not link.is_symlink():
            return None
        return treebuild.read_id(link.resolve().parent) if link.exists() else None

    node = metrics.NodeCollector(metrics.runtime_lister(host.path(s.runtime_path), roots), version,
                                 host.path(s.lxcfs_path) if s.lxcfs_path else None, s.lxcfs_path or None)
    return metrics.Metrics(calls, node)


def _start_reporter(opts: RunOptions, stop: threading.Event) -> threading.Thread | None:
    """The node report (another part of the agent) runs beside us when it is part of this build."""
    try:
        from . import report  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    lg = log.get("run")

    def target() -> None:
        try:
            s = opts.settings
            report.run_reporter(opts.node_name, config=report.ProbeConfig.from_settings(s), prefix=s.label_prefix,
                                interval=s.report_interval, stop=stop)
        except Exception as err:  # the report must never take the installer down with it
            lg.error("node reporter stopped", error=str(err))

    t = threading.Thread(target=target, name="reporter", daemon=True)
    t.start()
    return t


def _withdraw_report(opts: RunOptions) -> None:
    """Take this node's report and labels off its Node before the runtime goes, so that the
    RuntimeClass stops sending pods here first (the report part exists only in full builds)."""
    lg = log.get("run")
    try:
        from . import report  # type: ignore[attr-defined,unused-ignore]
        from .kube.client import KubeNodeAPI  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    if not opts.node_name:
        return
    try:
        report.withdraw(KubeNodeAPI.from_environment(), opts.node_name, opts.settings.label_prefix)
    except Exception as err:  # never let the API stand between the node and a clean uninstall
        lg.warning("could not withdraw the node report", error=str(err))


def run(
    host: HostRoot,
    s: Settings,
    opts: RunOptions,
    reloader: Reloader,
    validator: containerd.Validator,
    *,
    stop: threading.Event | None = None,
    cluster: ClusterReader | None = None,
    health: health_mod.Health | None = None,
    withdraw: Callable[[], None] | None = None,
) -> int:
    from . import treebuild

    lg = log.get("run")
    stop = stop or threading.Event()
    health = health or health_mod.Health()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    served = node_metrics(host, s) if opts.metrics else None
    server = health_mod.serve(opts.listen, health, served.render if served else None)
    if opts.smoke_binary is not None:
        from . import podenv

        podenv.prepare()
    reporter: threading.Thread | None = None
    try:
        while not stop.is_set():
            try:
                src = treebuild.locate(opts.tree)
                out = plan.install(host, s, src, reloader, validator, opts.cri, opts.smoke_binary)
                if out.pending:
                    health.set(False, "installed, but owed: " + "; ".join(out.pending))
                else:
                    health.set(True, f"installed: {out.version}")
                    if served is not None and served.calls is not None:
                        _ensure_call_log(served.calls)
            except AgentError as err:
                lg.error("install failed; retrying", error=str(err), retry_s=opts.retry)
                health.set(False, str(err))
            except Exception as err:  # a bug must not crash-loop the pod: unready, logged, retried
                lg.exception("install failed unexpectedly; retrying", retry_s=opts.retry)
                health.set(False, f"internal error: {err!r}")
            # the report (and with it the operator's ready label) starts only once a pod of the
            # RuntimeClass can start here: installed, checked, and the CRI runtime restarted so
            # that it knows the handler; before that the node must not attract such pods
            if reporter is None and health.get()[0]:
                reporter = _start_reporter(opts, stop)
            metrics.note_installed(health.get()[0])
            stop.wait(opts.resync if health.get()[0] else opts.retry)
        health.set(False, "terminating")
        metrics.note_installed(False)
        if _rolling_update(opts, cluster):
            lg.info("the DaemonSet still selects this node (rolling update): lxcri stays installed")
            return 0
        lg.info("leaving the node: withdrawing the report, then uninstalling lxcri")
        if reporter is not None:
            reporter.join(30)  # no report published after it was withdrawn
        (withdraw or (lambda: _withdraw_report(opts)))()
        return plan.uninstall(host, s, reloader).exit_code
    finally:
        server.shutdown()
        server.server_close()


def _ensure_call_log(calls: metrics.CallLog) -> None:
    """Only where the runtime root exists (the chart's hostPath makes it): the agent creates no
    host directory for its metrics that an uninstall would then have to know about."""
    if not calls.path.parent.is_dir():
        return
    try:
        calls.ensure()
    except OSError as err:  # metrics are not worth an unready node
        log.get("run").warning("cannot create the runtime's call log: no call metrics", error=str(err))


def _rolling_update(opts: RunOptions, cluster: ClusterReader | None) -> bool:
    lg = log.get("run")
    if not (opts.daemonset and opts.namespace and opts.node_name):
        lg.info("no DaemonSet/namespace/node given: treating SIGTERM as leaving the node")
        return False
    try:
        api = cluster or KubeClusterReader.from_environment()
        return still_selected(api, opts.namespace, opts.daemonset, opts.node_name)
    except Exception as err:  # any API failure: keep the node as it is
        if getattr(err, "status", None) in (401, 403):
            # not a failure to ask but an answer: the agent's ServiceAccount or RBAC is gone, which
            # only deleting the release does (a rolling update keeps them)
            lg.info("the API no longer accepts the agent's credentials: the release is being deleted",
                    status=getattr(err, "status", None))
            return False
        lg.warning("cannot ask the API whether this is a rolling update; leaving lxcri installed", error=str(err))
        return True

"""The reporting loop the agent's ``run`` command starts: probe, publish, sleep, repeat."""

from __future__ import annotations

import logging
import threading

from ..kube.api import ApiError, NodeAPI
from .model import DEFAULT_PREFIX, Report
from .probe import ProbeConfig, Runner, probe, run_command
from .publish import Publisher

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0
RETRY_INTERVAL = 10.0


def run_reporter(
    node_name: str | None = None,
    *,
    config: ProbeConfig | None = None,
    api: NodeAPI | None = None,
    prefix: str | None = None,
    interval: float | None = None,
    stop: threading.Event | None = None,
    run: Runner = run_command,
) -> None:
    """Probe this node and publish its report on start and every ``interval`` seconds,
    until ``stop`` is set. Blocks: run it in a thread beside the health server.

    ``run`` passes what the agent's settings say (``NODE_NAME`` from the downward API,
    ``LXCRI_LABEL_PREFIX``, ``LXCRI_REPORT_INTERVAL``, the paths of :meth:`ProbeConfig.from_settings`).
    A failed publish is retried sooner than a full interval, because until it lands the operator
    labels from stale data.
    """
    name = node_name
    if not name:
        raise ValueError("no node name: set NODE_NAME from the downward API (spec.nodeName)")
    if api is None:
        from ..kube.client import KubeNodeAPI

        api = KubeNodeAPI.from_environment()
    period = interval if interval is not None else DEFAULT_INTERVAL
    publisher = Publisher(api, name, prefix or DEFAULT_PREFIX)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            report = probe(config or ProbeConfig(), run)
        except Exception as exc:  # a bug in the probe must not silently end the reports
            log.exception("probing lxcri on node %s failed", name)
            report = Report(ready=False, reason=f"probe failed: {type(exc).__name__}: {exc}"[:200])
        wait = period
        try:
            publisher.publish(report)
        except ApiError as exc:
            log.warning("publishing the lxcri report for node %s failed: %s", name, exc)
            wait = min(period, RETRY_INTERVAL)
        stop.wait(wait)

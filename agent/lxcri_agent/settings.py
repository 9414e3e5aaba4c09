"""The agent's settings: one object, read once from the environment (and, for ``lxcri-agent``,
its flags), then handed to whatever needs a value.

Every program of the agent takes its configuration from here: ``lxcri-agent``'s subcommands,
the node reporter that ``run`` starts, and ``lxcri-operator``. No other module of the agent reads
a setting from ``os.environ``, so what a variable does is written in one place, beside its
default. The names are the ones the chart sets (``charts/lxcri/templates``): ``LXCRI_<NAME>``,
or ``LXCRI_AGENT_<NAME>``; an empty variable counts as unset.

Two prefixes, two names: ``install_dir`` is where the runtime tree goes on the host
(``--prefix`` / ``LXCRI_PREFIX``, ``/opt/lxcri``); ``label_prefix`` is the key prefix of lxcri's
Node labels and annotations (``--label-prefix`` / ``LXCRI_LABEL_PREFIX``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LABEL_PREFIX = "lxcri.linuxcontainers.org"
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Environment:
    """The process environment as the agent reads it: the chart's names, empty meaning unset."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)

    def get(self, *names: str, default: str | None = None) -> str | None:
        """The first of ``LXCRI_<NAME>`` / ``LXCRI_AGENT_<NAME>`` that is set, for each name in turn."""
        for name in names:
            for var in (f"LXCRI_{name}", f"LXCRI_AGENT_{name}"):
                value = self._environ.get(var)
                if value:
                    return value
        return default

    def own(self, name: str) -> str | None:
        """A variable by its own name, not lxcri's (``NODE_NAME``, ``POD_NAMESPACE``: the downward API)."""
        return self._environ.get(name) or None


@dataclass(frozen=True)
class AgentSettings:
    """Everything the agent's programs are configured with; the defaults are the chart's."""

    # logging (every program)
    log_format: str | None = None  # "json" | "text"; None: JSON unless stderr is a terminal
    log_level: str = "info"
    # the host and what goes on it (lxcri-agent install | uninstall | status | run)
    host_root: Path = Path("/")
    install_dir: str = "/opt/lxcri"  # --prefix: the runtime tree's directory on the host
    runtime_root: str = "/run/lxcri"
    state_dir: str = "/var/lib/lxcri-agent"
    containerd_config: str = "/etc/containerd/config.toml"
    crio_dir: str = "/etc/crio"
    handler: str = "lxcri"
    lxcfs_path: str = "/var/lib/lxcfs"
    crio_apply: str = "restart"
    restart_cmds: tuple[str, ...] = ()  # SERVICE[-ACTION]=CMD, flags first, then LXCRI_RESTART_CMDS
    systemd_socket: str | None = None
    proc: str = "/proc"  # where the CRI runtimes' processes are looked for (tests: a stand-in)
    tree: Path | None = None
    cri: str = "auto"
    smoke: str = "auto"  # "auto" | "on" | "off": the smoke container before registering
    containerd_bin: str | None = None
    # lxcri-agent run, and the node reporter it starts
    listen: str = "0.0.0.0:8090"
    node_name: str | None = None
    namespace: str | None = None
    daemonset: str | None = None
    label_prefix: str = DEFAULT_LABEL_PREFIX
    report_interval: float = 300.0
    probe_smoke_binary: str = "/bin/busybox"  # the static executable the reporter's smoke container runs
    # lxcri-agent leave-cluster
    leave_timeout: float = 600.0
    # lxcri-operator
    health_port: str | None = None
    peering_name: str = ""
    peering_priority: int | None = None
    pod_name: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        """The settings the environment describes (each value the chart's name for it, else the default)."""
        env = Environment(environ)
        d = cls()
        smoke_test = env.get("SMOKE_TEST")  # the chart's true/false
        if smoke_test is not None:
            smoke = "on" if smoke_test.lower() in ("1", "true", "yes", "on") else "off"
        else:
            smoke = env.get("SMOKE", default=d.smoke) or d.smoke
        port = env.get("HEALTH_PORT")
        conf_dir = env.get("CONTAINERD_CONFIG_DIR")
        tree = env.get("TREE")
        priority = env.get("PEERING_PRIORITY")
        return cls(
            log_format=env.get("LOG_FORMAT"),
            log_level=(env.get("LOG_LEVEL") or d.log_level).lower(),
            host_root=Path(env.get("HOST_ROOT") or d.host_root),
            install_dir=env.get("PREFIX") or d.install_dir,
            runtime_root=env.get("RUNTIME_ROOT") or d.runtime_root,
            state_dir=env.get("STATE_DIR") or d.state_dir,
            containerd_config=f"{conf_dir.rstrip('/')}/config.toml" if conf_dir
            else env.get("CONTAINERD_CONFIG") or d.containerd_config,
            crio_dir=env.get("CRIO_CONFIG_DIR", "CRIO_DIR") or d.crio_dir,
            handler=env.get("HANDLER") or d.handler,
            lxcfs_path=env.get("LXCFS_PATH") or d.lxcfs_path,
            crio_apply=env.get("CRIO_APPLY") or d.crio_apply,
            restart_cmds=tuple(c for c in (env.get("RESTART_CMDS") or "").split(";") if c.strip()),
            systemd_socket=env.get("SYSTEMD_SOCKET"),
            proc=env.get("PROC") or d.proc,
            tree=Path(tree) if tree else None,
            cri=env.get("CRI") or d.cri,
            smoke=smoke,
            containerd_bin=env.get("CONTAINERD_BIN"),
            listen=f"0.0.0.0:{port}" if port else env.get("LISTEN") or d.listen,
            node_name=env.own("NODE_NAME") or env.get("NODE_NAME"),
            namespace=env.own("POD_NAMESPACE") or env.get("NAMESPACE"),
            daemonset=env.get("DAEMONSET_NAME", "DAEMONSET"),
            label_prefix=env.get("LABEL_PREFIX") or d.label_prefix,
            report_interval=float(env.get("REPORT_INTERVAL") or d.report_interval),
            probe_smoke_binary=env.get("SMOKE_BINARY") or d.probe_smoke_binary,
            health_port=port,
            peering_name=env.get("PEERING_NAME") or d.peering_name,
            peering_priority=int(priority) if priority else None,
            pod_name=env.own("POD_NAME"),
        )

    @property
    def log_json(self) -> bool | None:
        """JSON lines or text; None lets the log set-up decide (JSON unless a human watches)."""
        return None if self.log_format is None else self.log_format == "json"

    @property
    def log_level_number(self) -> int:
        return LOG_LEVELS.get(self.log_level, LOG_LEVELS["info"])

    def restart_commands(self) -> dict[str, str]:
        """``--restart-cmd`` and ``LXCRI_RESTART_CMDS`` as {"SERVICE-ACTION": command}; ValueError
        saying what was expected when an item has no command."""
        out: dict[str, str] = {}
        for item in self.restart_cmds:
            key, sep, cmd = item.partition("=")
            if not sep or not cmd.strip():
                raise ValueError(f"--restart-cmd wants SERVICE=COMMAND, got {item!r}")
            key = key.strip()
            out[key if "-" in key else f"{key}-restart"] = cmd.strip()
        return out

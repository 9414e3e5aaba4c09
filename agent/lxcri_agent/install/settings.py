"""What the agent installs and where; one value object passed to every step.

Derived from the agent's settings (:mod:`lxcri_agent.settings`) by :meth:`Settings.of`; the
install steps see only this, the part that describes the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import AgentSettings


@dataclass(frozen=True)
class Settings:
    """The defaults of what both describe are the agent's own (one place states them)."""

    handler: str = AgentSettings.handler
    runtime_path: str = f"{AgentSettings.install_dir}/bin/lxcri"
    runtime_root: str = AgentSettings.runtime_root
    install_dir: str = AgentSettings.install_dir
    crio_dir: str = AgentSettings.crio_dir
    crio_dropin_priority: int = 50
    # CRI-O documents its runtimes table as reloadable on SIGHUP (since 1.25), but a handler added
    # that way shows in `crio status config` while RunPodSandbox still refuses it (cri-o issue
    # 10202, open in 2026). "restart" works on every CRI-O; "reload" is there for fixed versions.
    crio_apply: str = AgentSettings.crio_apply
    containerd_config: str = AgentSettings.containerd_config
    containerd_dropin_name: str = "50-lxcri.toml"
    # liblxc keeps a lock file per container under <lock dir><lxcpath>/ and never removes them
    lxc_lock_dir: str = "/run/lxc/lock"
    crio_unit: str = "crio.service"
    containerd_unit: str = "containerd.service"
    # the pod annotations lxcri acts on: containerd passes a pod's annotations to the runtime only
    # when its runtime entry lists them in pod_annotations (CRI-O passes them all; its
    # allowed_annotations takes only CRI-O's own, and a handler listing others is ignored)
    pod_annotations: tuple[str, ...] = ("lxcri.linuxcontainers.org/lxcfs",
                                        "lxcri.linuxcontainers.org/system-container")
    # where the node's lxcfs is mounted (the chart's lxcfs.path): the runtime binds its views from there
    lxcfs_path: str = AgentSettings.lxcfs_path

    @classmethod
    def of(cls, agent: AgentSettings) -> Settings:
        """What the agent's settings say about the host: the tree under ``install_dir``, ``bin/lxcri``
        its command."""
        install_dir = agent.install_dir.rstrip("/")
        return cls(
            handler=agent.handler,
            install_dir=install_dir,
            runtime_path=f"{install_dir}/bin/lxcri",
            runtime_root=agent.runtime_root,
            containerd_config=agent.containerd_config,
            crio_dir=agent.crio_dir,
            crio_apply=agent.crio_apply,
            lxcfs_path=agent.lxcfs_path,
        )

    @property
    def runtime_settings(self) -> str:
        """The installed runtime's own settings file (lxcri's settings.installed_config)."""
        return f"{self.install_dir}/etc/lxcri.json"

    @property
    def call_log(self) -> str:
        """Where the runtime appends one line per call and the agent's /metrics reads them: in the
        runtime root, which the agent's pod mounts (the runtime's own default is /run/lxcri/calls.log)."""
        return f"{self.runtime_root}/calls.log"

    @property
    def crio_dropin(self) -> str:
        return f"{self.crio_dir}/crio.conf.d/{self.crio_dropin_priority:02d}-{self.handler}.conf"

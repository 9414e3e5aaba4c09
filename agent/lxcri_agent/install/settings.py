"""What the agent installs and where; one value object passed to every step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    handler: str = "lxcri"
    runtime_path: str = "/opt/lxcri/bin/lxcri"
    runtime_root: str = "/run/lxcri"
    opt_dir: str = "/opt/lxcri"
    crio_dir: str = "/etc/crio"
    crio_dropin_priority: int = 50
    # "restart" is safe on every CRI-O; "reload" (SIGHUP) only where CRI-O reloads its runtimes table
    crio_apply: str = "restart"
    containerd_config: str = "/etc/containerd/config.toml"
    containerd_dropin_name: str = "50-lxcri.toml"
    crio_unit: str = "crio.service"
    containerd_unit: str = "containerd.service"

    @property
    def crio_dropin(self) -> str:
        return f"{self.crio_dir}/crio.conf.d/{self.crio_dropin_priority:02d}-{self.handler}.conf"

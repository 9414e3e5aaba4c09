"""The agent's settings: read once from the environment the chart sets, flags on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_agent import cli
from lxcri_agent.install.settings import Settings
from lxcri_agent.settings import DEFAULT_LABEL_PREFIX, AgentSettings


def test_two_prefixes_two_names() -> None:
    """LXCRI_PREFIX is where the tree goes on the host, LXCRI_LABEL_PREFIX the Node keys' prefix."""
    s = AgentSettings.from_environment({"LXCRI_PREFIX": "/usr/local/lxcri/", "LXCRI_LABEL_PREFIX": "example.org"})
    assert s.install_dir == "/usr/local/lxcri/" and s.label_prefix == "example.org"
    assert Settings.of(s).runtime_path == "/usr/local/lxcri/bin/lxcri"
    assert AgentSettings.from_environment({}).label_prefix == DEFAULT_LABEL_PREFIX


def test_chart_names_agent_names_and_the_downward_api() -> None:
    s = AgentSettings.from_environment({
        "LXCRI_AGENT_HOST_ROOT": "/host", "LXCRI_CONTAINERD_CONFIG_DIR": "/etc/k3s/containerd/",
        "LXCRI_HEALTH_PORT": "9000", "LXCRI_SMOKE_TEST": "false", "NODE_NAME": "n1", "POD_NAMESPACE": "kube-system",
        "LXCRI_RESTART_CMDS": "crio=true; containerd-reload=kill -HUP 1", "LXCRI_LOG_LEVEL": "WARNING",
        "LXCRI_HANDLER": "",  # empty is unset
    })
    assert s.host_root == Path("/host") and s.containerd_config == "/etc/k3s/containerd/config.toml"
    assert s.listen == "0.0.0.0:9000" and s.health_port == "9000"
    assert s.smoke == "off" and s.node_name == "n1" and s.namespace == "kube-system" and s.handler == "lxcri"
    assert s.restart_commands() == {"crio-restart": "true", "containerd-reload": "kill -HUP 1"}
    assert s.log_level == "warning" and s.log_level_number == 30


def test_flags_win_over_the_environment() -> None:
    env = AgentSettings.from_environment({"LXCRI_PREFIX": "/opt/env", "LXCRI_RESTART_CMDS": "crio=env"})
    args = cli._parser(env).parse_args(["--debug", "install", "--prefix", "/opt/flag", "--restart-cmd", "crio=flag"])
    s = cli.settings_from(args, env)
    assert s.install_dir == "/opt/flag" and s.log_level == "debug"
    assert s.restart_cmds == ("crio=flag", "crio=env")  # flags first
    assert cli.settings_from(cli._parser(env).parse_args(["status"]), env).install_dir == "/opt/env"


def test_a_restart_command_needs_a_command() -> None:
    with pytest.raises(ValueError, match="SERVICE=COMMAND"):
        AgentSettings(restart_cmds=("crio",)).restart_commands()

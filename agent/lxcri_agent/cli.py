"""``lxcri-agent install | uninstall | status | run``: parse, call one operation, print one line.

Every flag can also come from the environment, under the names the chart's DaemonSet sets
(``LXCRI_HOST_ROOT``, ``LXCRI_PREFIX``, ``LXCRI_CRIO_CONFIG_DIR``, ``LXCRI_DAEMONSET_NAME``, ...;
``LXCRI_AGENT_<NAME>`` works too): :mod:`.settings` reads them once, and the flags given here
override them; the commands see only the resulting :class:`~.settings.AgentSettings`.
Exit codes: 0 done, 1 error (one line saying what and where), 3 installed but a CRI runtime
restart is still owed (the message says why).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from .settings import AgentSettings


def _parser(e: AgentSettings) -> argparse.ArgumentParser:
    """The flags, each defaulting to what the environment says (``e``)."""
    p = argparse.ArgumentParser(
        prog="lxcri-agent", description="Install lxcri on a node and register it with CRI-O and containerd."
    )
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default=e.log_format,
        help="default: json unless stderr is a terminal (env LXCRI_LOG_FORMAT)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=e.log_level,
    )
    p.add_argument("--debug", action="store_true", help="same as --log-level debug")
    p.add_argument("--version", action="version", version=f"lxcri-agent {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--host-root",
        type=Path,
        default=e.host_root,
        help="where the node's / is mounted (env LXCRI_HOST_ROOT; default /)",
    )
    common.add_argument("--prefix", dest="install_dir", default=e.install_dir, help="host dir of the tree")
    common.add_argument("--runtime-root", default=e.runtime_root)
    common.add_argument("--state-dir", default=e.state_dir)
    common.add_argument("--containerd-config", default=e.containerd_config)
    common.add_argument("--crio-dir", default=e.crio_dir)
    common.add_argument("--handler", default=e.handler, help="runtime handler name")
    common.add_argument(
        "--lxcfs-path",
        default=e.lxcfs_path,
        help="host path where lxcfs is mounted, written into the installed runtime's settings (env LXCRI_LXCFS_PATH)",
    )
    apply = argparse.ArgumentParser(add_help=False)
    apply.add_argument(
        "--crio-apply",
        choices=["restart", "reload"],
        default=e.crio_apply,
        help="reload = SIGHUP, for CRI-O versions that really reload their runtimes table",
    )
    apply.add_argument(
        "--restart-cmd",
        dest="restart_cmds",
        action="append",
        default=[],
        metavar="SERVICE[-ACTION]=CMD",
        help='command instead of systemd, e.g. containerd="nsenter -t 1 -m rc-service containerd '
        "restart\" (env LXCRI_RESTART_CMDS, ';'-separated)",
    )
    apply.add_argument(
        "--systemd-socket",
        default=e.systemd_socket,
        help="host path of the system bus socket (default /run/dbus/system_bus_socket)",
    )
    inst = argparse.ArgumentParser(add_help=False)
    inst.add_argument(
        "--tree",
        type=Path,
        default=e.tree,
        help="runtime tree to install (default: the image's, else built from this Python's lxcri with PyInstaller)",
    )
    inst.add_argument("--cri", choices=["auto", "crio", "containerd", "both"], default=e.cri)
    inst.add_argument(
        "--smoke",
        choices=["auto", "on", "off"],
        default=e.smoke,
        help="run a smoke container through the new runtime before registering it "
        "(auto: when a static busybox is at hand; env LXCRI_SMOKE_TEST=true|false)",
    )
    inst.add_argument(
        "--containerd",
        dest="containerd_bin",
        default=e.containerd_bin,
        help="containerd binary to validate configs with when the host root has none",
    )
    sub.add_parser("install", parents=[common, apply, inst], help="install the tree and register the handler")
    sub.add_parser("uninstall", parents=[common, apply], help="remove what the manifest lists, reload last")
    sub.add_parser("status", parents=[common], help="print what is installed, as JSON")
    bt = sub.add_parser("build-tree", help="build the self-contained runtime tree (image build)")
    bt.add_argument("out", type=Path)
    bt.add_argument("--paths", type=Path, action="append", default=[], help="extra import root for `lxcri`")
    leave = sub.add_parser("leave-cluster", help="the chart's pre-delete hook: agents off every node first")
    leave.add_argument("--namespace", default=e.namespace)
    leave.add_argument("--daemonset", default=e.daemonset or "lxcri-agent")
    leave.add_argument("--label-prefix", default=e.label_prefix)
    leave.add_argument("--timeout", dest="leave_timeout", type=float, default=e.leave_timeout,
                       help="seconds to wait for the agents")
    run = sub.add_parser("run", parents=[common, apply, inst], help="the DaemonSet's main")
    run.add_argument(
        "--listen", default=e.listen, help="address of /healthz and /readyz (env LXCRI_HEALTH_PORT)"
    )
    run.add_argument("--node-name", default=e.node_name)
    run.add_argument("--namespace", default=e.namespace)
    run.add_argument(
        "--daemonset",
        default=e.daemonset,
        help="the agent's DaemonSet, for the rolling-update check at SIGTERM",
    )
    return p


def _version() -> str:
    from .version import agent_version

    return agent_version()


def settings_from(args: argparse.Namespace, env: AgentSettings) -> AgentSettings:
    """The environment's settings with the flags given on top (each flag's default is the
    environment's value, so every parsed flag simply wins)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(AgentSettings) if hasattr(args, f.name)}
    if "restart_cmds" in given:  # flags first, then LXCRI_RESTART_CMDS
        given["restart_cmds"] = (*given["restart_cmds"], *env.restart_cmds)
    if args.debug:
        given["log_level"] = "debug"
    return dataclasses.replace(env, **given)


def main(argv: list[str] | None = None) -> int:
    env = AgentSettings.from_environment()
    args = _parser(env).parse_args(argv)
    a = settings_from(args, env)
    from . import log

    log.setup(a)
    from .errors import AgentError

    try:
        return _dispatch(args.command, args, a)
    except AgentError as err:
        log.get("cli").error(str(err))
        print(f"lxcri-agent: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(command: str, args: argparse.Namespace, a: AgentSettings) -> int:
    if command == "build-tree":
        from . import treebuild

        built = treebuild.build(args.out, paths=tuple(args.paths))
        print(f"{built} {treebuild.read_id(built)}")
        return 0
    if command == "leave-cluster":
        from .leave import leave_cluster

        if not a.namespace:
            raise SystemExit("lxcri-agent leave-cluster: --namespace (or POD_NAMESPACE) is required")
        return leave_cluster(a.namespace, a.daemonset or "lxcri-agent", a.label_prefix, a.leave_timeout)
    from .hostfs import HostRoot
    from .install import plan
    from .install.settings import Settings

    host = HostRoot(a.host_root, a.state_dir)
    s = Settings.of(a)
    if command == "status":
        st = plan.status(host, s)
        print(json.dumps(st, indent=2, sort_keys=True))
        return 0 if st["healthy"] else 1
    from .install import reload

    try:
        commands = a.restart_commands()
    except ValueError as err:
        raise SystemExit(f"lxcri-agent: {err}") from None
    reloader = reload.choose(host, commands, a.systemd_socket, proc=a.proc)
    if command == "uninstall":
        return _report(plan.uninstall(host, s, reloader))
    from . import treebuild
    from .install import containerd

    validator = containerd.Validator(host, a.containerd_bin or _which("containerd"))
    smoke_binary = _smoke_binary(a.smoke)
    if command == "install":
        return _report(plan.install(host, s, treebuild.locate(a.tree), reloader, validator, a.cri, smoke_binary))
    from . import run

    return run.run(host, s, run.RunOptions.of(a, smoke_binary), reloader, validator)


def _smoke_binary(mode: str) -> Path | None:
    if mode == "off":
        return None
    from .install import smoke

    found = smoke.find_static_binary()
    if found is None and mode == "on":
        from .errors import AgentError

        raise AgentError("--smoke on needs a static busybox at " + " or ".join(smoke.STATIC_CANDIDATES))
    if found is None:
        from . import log

        log.get("install").info("no static busybox: skipping the smoke container")
    return found


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def _report(out: Any) -> int:
    for p in out.pending:
        print(f"lxcri-agent: pending: {p}", file=sys.stderr)
    return int(out.exit_code)


if __name__ == "__main__":
    sys.exit(main())

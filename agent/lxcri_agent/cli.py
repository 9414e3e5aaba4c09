"""``lxcri-agent install | uninstall | status | run``: parse, call one operation, print one line.

Every flag can also come from the environment, under the names the chart's DaemonSet sets
(``LXCRI_HOST_ROOT``, ``LXCRI_PREFIX``, ``LXCRI_CRIO_CONFIG_DIR``, ``LXCRI_DAEMONSET_NAME``, ...;
``LXCRI_AGENT_<NAME>`` works too). Exit codes: 0 done, 1 error (one line saying what and where),
3 installed but a CRI runtime restart is still owed (the message says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _env(*names: str, default: str | None = None) -> str | None:
    """The first of ``LXCRI_<NAME>`` / ``LXCRI_AGENT_<NAME>`` that is set, for each name in turn."""
    for name in names:
        for var in (f"LXCRI_{name}", f"LXCRI_AGENT_{name}"):
            value = os.environ.get(var)
            if value:
                return value
    return default


def _smoke_default() -> str:
    flag = _env("SMOKE_TEST")  # the chart's true/false
    if flag is not None:
        return "on" if flag.lower() in ("1", "true", "yes", "on") else "off"
    return _env("SMOKE", default="auto") or "auto"


def _listen_default() -> str:
    port = _env("HEALTH_PORT")
    return f"0.0.0.0:{port}" if port else _env("LISTEN", default="0.0.0.0:8090") or "0.0.0.0:8090"


def _containerd_config_default() -> str:
    conf_dir = _env("CONTAINERD_CONFIG_DIR")
    if conf_dir:
        return f"{conf_dir.rstrip('/')}/config.toml"
    return _env("CONTAINERD_CONFIG", default="/etc/containerd/config.toml") or "/etc/containerd/config.toml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lxcri-agent", description="Install lxcri on a node and register it with CRI-O and containerd."
    )
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default=_env("LOG_FORMAT"),
        help="default: json unless stderr is a terminal (env LXCRI_LOG_FORMAT)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=(_env("LOG_LEVEL", default="info") or "info").lower(),
    )
    p.add_argument("--debug", action="store_true", help="same as --log-level debug")
    p.add_argument("--version", action="version", version=f"lxcri-agent {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--host-root",
        type=Path,
        default=Path(_env("HOST_ROOT", default="/") or "/"),
        help="where the node's / is mounted (env LXCRI_HOST_ROOT; default /)",
    )
    common.add_argument("--prefix", default=_env("PREFIX", default="/opt/lxcri"), help="host dir of the tree")
    common.add_argument("--runtime-root", default=_env("RUNTIME_ROOT", default="/run/lxcri"))
    common.add_argument("--state-dir", default=_env("STATE_DIR", default="/var/lib/lxcri-agent"))
    common.add_argument("--containerd-config", default=_containerd_config_default())
    common.add_argument("--crio-dir", default=_env("CRIO_CONFIG_DIR", "CRIO_DIR", default="/etc/crio"))
    common.add_argument("--handler", default=_env("HANDLER", default="lxcri"), help="runtime handler name")
    common.add_argument(
        "--lxcfs-path",
        default=_env("LXCFS_PATH", default="/var/lib/lxcfs"),
        help="host path where lxcfs is mounted, written into the installed runtime's settings (env LXCRI_LXCFS_PATH)",
    )
    apply = argparse.ArgumentParser(add_help=False)
    apply.add_argument(
        "--crio-apply",
        choices=["restart", "reload"],
        default=_env("CRIO_APPLY", default="restart"),
        help="reload = SIGHUP, for CRI-O versions that really reload their runtimes table",
    )
    apply.add_argument(
        "--restart-cmd",
        action="append",
        default=[],
        metavar="SERVICE[-ACTION]=CMD",
        help='command instead of systemd, e.g. containerd="nsenter -t 1 -m rc-service containerd '
        "restart\" (env LXCRI_RESTART_CMDS, ';'-separated)",
    )
    apply.add_argument(
        "--systemd-socket",
        default=_env("SYSTEMD_SOCKET"),
        help="host path of the system bus socket (default /run/dbus/system_bus_socket)",
    )
    inst = argparse.ArgumentParser(add_help=False)
    inst.add_argument(
        "--tree",
        type=Path,
        default=Path(t) if (t := _env("TREE")) else None,
        help="runtime tree to install (default: the image's, else built from this Python's lxcri with PyInstaller)",
    )
    inst.add_argument("--cri", choices=["auto", "crio", "containerd", "both"], default=_env("CRI", default="auto"))
    inst.add_argument(
        "--smoke",
        choices=["auto", "on", "off"],
        default=_smoke_default(),
        help="run a smoke container through the new runtime before registering it "
        "(auto: when a static busybox is at hand; env LXCRI_SMOKE_TEST=true|false)",
    )
    inst.add_argument(
        "--containerd",
        default=_env("CONTAINERD_BIN"),
        help="containerd binary to validate configs with when the host root has none",
    )
    sub.add_parser("install", parents=[common, apply, inst], help="install the tree and register the handler")
    sub.add_parser("uninstall", parents=[common, apply], help="remove what the manifest lists, reload last")
    sub.add_parser("status", parents=[common], help="print what is installed, as JSON")
    bt = sub.add_parser("build-tree", help="build the self-contained runtime tree (image build)")
    bt.add_argument("out", type=Path)
    bt.add_argument("--paths", type=Path, action="append", default=[], help="extra import root for `lxcri`")
    leave = sub.add_parser("leave-cluster", help="the chart's pre-delete hook: agents off every node first")
    leave.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE") or _env("NAMESPACE"))
    leave.add_argument("--daemonset", default=_env("DAEMONSET_NAME", "DAEMONSET", default="lxcri-agent"))
    leave.add_argument("--label-prefix", default=_env("LABEL_PREFIX", default="lxcri.linuxcontainers.org"))
    leave.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the agents")
    run = sub.add_parser("run", parents=[common, apply, inst], help="the DaemonSet's main")
    run.add_argument(
        "--listen", default=_listen_default(), help="address of /healthz and /readyz (env LXCRI_HEALTH_PORT)"
    )
    run.add_argument("--node-name", default=os.environ.get("NODE_NAME") or _env("NODE_NAME"))
    run.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE") or _env("NAMESPACE"))
    run.add_argument(
        "--daemonset",
        default=_env("DAEMONSET_NAME", "DAEMONSET"),
        help="the agent's DaemonSet, for the rolling-update check at SIGTERM",
    )
    return p


def _version() -> str:
    from .version import agent_version

    return agent_version()


def _commands(args: argparse.Namespace) -> dict[str, str]:
    items = list(args.restart_cmd) + [c for c in (_env("RESTART_CMDS") or "").split(";") if c.strip()]
    out: dict[str, str] = {}
    for item in items:
        key, sep, cmd = item.partition("=")
        if not sep or not cmd.strip():
            raise SystemExit(f"lxcri-agent: --restart-cmd wants SERVICE=COMMAND, got {item!r}")
        key = key.strip()
        out[key if "-" in key else f"{key}-restart"] = cmd.strip()
    return out


def settings(args: argparse.Namespace) -> Any:
    from .install.settings import Settings

    prefix = args.prefix.rstrip("/")
    return Settings(
        handler=args.handler,
        opt_dir=prefix,
        runtime_path=f"{prefix}/bin/lxcri",
        runtime_root=args.runtime_root,
        containerd_config=args.containerd_config,
        crio_dir=args.crio_dir,
        crio_apply=getattr(args, "crio_apply", "restart"),
        lxcfs_path=args.lxcfs_path,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import log

    log.setup(
        json_output=None if args.log_format is None else args.log_format == "json",
        level=10 if args.debug else {"debug": 10, "info": 20, "warning": 30, "error": 40}[args.log_level],
    )
    from .errors import AgentError

    try:
        return _dispatch(args)
    except AgentError as err:
        log.get("cli").error(str(err))
        print(f"lxcri-agent: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "build-tree":
        from . import treebuild

        built = treebuild.build(args.out, paths=tuple(args.paths))
        print(f"{built} {treebuild.read_id(built)}")
        return 0
    if args.command == "leave-cluster":
        from .leave import leave_cluster

        if not args.namespace:
            raise SystemExit("lxcri-agent leave-cluster: --namespace (or POD_NAMESPACE) is required")
        return leave_cluster(args.namespace, args.daemonset, args.label_prefix, args.timeout)
    from .hostfs import HostRoot
    from .install import plan

    host = HostRoot(args.host_root, args.state_dir)
    s = settings(args)
    if args.command == "status":
        st = plan.status(host, s)
        print(json.dumps(st, indent=2, sort_keys=True))
        return 0 if st["healthy"] else 1
    from .install import reload

    reloader = reload.choose(host, _commands(args), args.systemd_socket)
    if args.command == "uninstall":
        return _report(plan.uninstall(host, s, reloader))
    from . import treebuild
    from .install import containerd

    validator = containerd.Validator(host, args.containerd or _which("containerd"))
    smoke_binary = _smoke_binary(args.smoke)
    if args.command == "install":
        return _report(plan.install(host, s, treebuild.locate(args.tree), reloader, validator, args.cri, smoke_binary))
    from . import run

    opts = run.RunOptions(
        smoke_binary=smoke_binary,
        listen=args.listen,
        node_name=args.node_name,
        namespace=args.namespace,
        daemonset=args.daemonset,
        tree=args.tree,
        cri=args.cri,
    )
    return run.run(host, s, opts, reloader, validator)


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

"""``lxcri-agent install | uninstall | status | run``: parse, call one operation, print one line.

Settings come from flags, each also readable from an ``LXCRI_AGENT_*`` variable so that the
DaemonSet can set them in its env. Exit codes: 0 done, 1 error (one line saying what and
where), 3 installed but a CRI runtime restart is still owed (the message says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LXCRI_AGENT_{name}", default)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lxcri-agent", description="Install lxcri on a node and register it with CRI-O and containerd."
    )
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default=_env("LOG_FORMAT"),
        help="default: json unless stderr is a terminal",
    )
    p.add_argument("--debug", action="store_true")
    p.add_argument("--version", action="version", version=f"lxcri-agent {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--host-root",
        type=Path,
        default=Path(_env("HOST_ROOT", "/") or "/"),
        help="where the node's / is mounted (env LXCRI_AGENT_HOST_ROOT; default /)",
    )
    common.add_argument(
        "--containerd-config", default=_env("CONTAINERD_CONFIG", "/etc/containerd/config.toml")
    )
    common.add_argument("--crio-dir", default=_env("CRIO_DIR", "/etc/crio"))
    common.add_argument("--handler", default=_env("HANDLER", "lxcri"), help="runtime handler name")
    apply = argparse.ArgumentParser(add_help=False)
    apply.add_argument(
        "--crio-apply",
        choices=["restart", "reload"],
        default=_env("CRIO_APPLY", "restart"),
        help="reload = SIGHUP, for CRI-O versions that reload their runtimes table",
    )
    apply.add_argument(
        "--restart-cmd",
        action="append",
        default=[],
        metavar="SERVICE[-ACTION]=CMD",
        help='command instead of systemd, e.g. containerd="nsenter -t 1 -m rc-service containerd '
        "restart\" (env LXCRI_AGENT_RESTART_CMDS, ';'-separated)",
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
        default=None,
        help="runtime tree to install (default: the image's, "
        "else built from this Python's lxcri with PyInstaller)",
    )
    inst.add_argument("--cri", choices=["auto", "crio", "containerd", "both"], default=_env("CRI", "auto"))
    inst.add_argument(
        "--smoke",
        choices=["auto", "on", "off"],
        default=_env("SMOKE", "auto"),
        help="run a smoke container through the installed runtime before registering it "
        "(auto: when a static busybox is at hand)",
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
    run = sub.add_parser("run", parents=[common, apply, inst], help="the DaemonSet's main")
    run.add_argument(
        "--listen", default=_env("LISTEN", "0.0.0.0:8090"), help="address of /healthz and /readyz"
    )
    run.add_argument("--node-name", default=_env("NODE_NAME") or os.environ.get("NODE_NAME"))
    run.add_argument("--namespace", default=_env("NAMESPACE") or os.environ.get("POD_NAMESPACE"))
    run.add_argument(
        "--daemonset", default=_env("DAEMONSET"), help="the agent's DaemonSet (rolling-update check)"
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

    return Settings(
        handler=args.handler,
        containerd_config=args.containerd_config,
        crio_dir=args.crio_dir,
        crio_apply=getattr(args, "crio_apply", "restart"),
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import log

    log.setup(
        json_output=None if args.log_format is None else args.log_format == "json",
        level=10 if args.debug else 20,
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
        from . import tree as tree_mod

        built = tree_mod.build(args.out, paths=tuple(args.paths))
        print(f"{built} {tree_mod.read_id(built)}")
        return 0
    from .hostfs import HostRoot
    from .install import plan

    host = HostRoot(args.host_root)
    s = settings(args)
    if args.command == "status":
        st = plan.status(host, s)
        print(json.dumps(st, indent=2, sort_keys=True))
        return 0 if st["healthy"] else 1
    from .install import reload

    reloader = reload.choose(host, _commands(args), args.systemd_socket)
    if args.command == "uninstall":
        return _report(plan.uninstall(host, s, reloader))
    from . import tree
    from .install import containerd

    validator = containerd.Validator(host, args.containerd or _which("containerd"))
    smoke_binary = _smoke_binary(args.smoke)
    if args.command == "install":
        return _report(
            plan.install(host, s, tree.locate(args.tree), reloader, validator, args.cri, smoke_binary)
        )
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

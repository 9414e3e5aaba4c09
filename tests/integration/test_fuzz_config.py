"""A fuzzer with a fixed seed over config.json, run through the real `lxcri create`.

Each case mutates one place of a valid, feature-rich config: a value out of range (uid 2^32,
umask -1, 10^100), of the wrong type, null, empty, a lone surrogate, a NUL, a deep nesting, a
key removed or an unknown one added, or the whole file nested past any parser's depth. Every
create must end in one of two ways: success (then deleted), or exit status 1 with one line on
stderr and no "internal error"; either way nothing is left behind.

    python tests/integration/test_fuzz_config.py [CASES] [SEED]   # prints the tally

prints how many cases ran, how many succeeded, were refused, ended in an internal error (with
the exceptions), and how many errors named the mutated field.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

SEED = 12
CASES = int(os.environ.get("LXCRI_FUZZ_CASES", "600"))

Path_ = tuple[Any, ...]

HOSTILE: list[Any] = [
    None, -1, -2**31 - 1, 2**31, 2**32, 2**32 + 1, 2**63, 2**64, 2**64 + 7, 10**100, -(10**30), 0, 1.5, -0.5,
    True, False, "", " ", "x", "-1", "4294967296", "\ud800", "a\udfffb", "a\x00b", "a\rb", "a\nb", "\t",
    "../../../../etc", "/proc/self/fd/7", "x" * 5000, [], {}, [None], [""], ["\ud800"], [2**64], [[[[[]]]]],
    {"a": None}, {"": ""}, {"\ud800": 1},
]


def base_config(args: list[str]) -> dict[str, Any]:
    """runc's default spec with most of what config.json can say switched on."""
    from lxcri_testlib import default_config

    cfg = default_config(args)
    p = cfg["process"]
    p["user"] = {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [1, 2]}
    p["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    p["oomScoreAdj"] = 100
    p["consoleSize"] = {"height": 25, "width": 80}
    cfg["hostname"] = "fuzz"
    cfg["domainname"] = "fuzz.example"
    cfg["annotations"] = {"io.kubernetes.pod.name": "fuzz"}
    cfg["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "size=1m", "mode=755"]})
    cfg["mounts"].append({"destination": "/etc/hostname-bind", "type": "bind", "source": "/etc/hostname",
                          "options": ["rbind", "ro"]})
    lx = cfg["linux"]
    lx["sysctl"] = {"kernel.msgmax": "8192"}
    lx["resources"] = {"memory": {"limit": 64 << 20, "reservation": 32 << 20},
                       "cpu": {"shares": 512, "quota": 50000, "period": 100000},
                       "pids": {"limit": 100},
                       "devices": [{"allow": False, "access": "rwm"},
                                   {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                       "blockIO": {"weight": 100}}
    lx["devices"] = [{"path": "/dev/fuzz-null", "type": "c", "major": 1, "minor": 3, "fileMode": 438,
                      "uid": 0, "gid": 0}]
    lx["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                     "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                   "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
    lx["rootfsPropagation"] = "rslave"
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}],
                    "startContainer": [{"path": "/bin/true"}], "poststop": [{"path": "/bin/true"}]}
    return cfg


def _paths(node: Any, here: Path_ = ()) -> list[Path_]:
    out = [here] if here else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*here, i))
    return out


def _get(node: Any, path: Path_) -> Any:
    for k in path:
        node = node[k]
    return node


def dotted(path: Path_) -> str:
    s = ""
    for k in path:
        s += f"[{k}]" if isinstance(k, int) else (f".{k}" if s else str(k))
    return s


def _deep_text(text: str) -> str:
    """The placeholders of deep nestings replaced by them (json.dumps could not write them)."""
    for depth in (50, 500, 5000):
        text = text.replace(f'"@@deep{depth}@@"', "[" * depth + '"bottom"' + "]" * depth)
    return text


def mutate(cfg: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any] | str, str]:
    """One mutation: (the new config, or raw JSON text for what no dict can hold; where)."""
    cfg = copy.deepcopy(cfg)
    paths = _paths(cfg)
    path = rng.choice(paths)
    parent, key = _get(cfg, path[:-1]), path[-1]
    op = rng.random()
    if op < 0.03:
        # nested past the parser's depth: only text can say it
        text = json.dumps(cfg)
        return text.replace('"ociVersion"', '"deep": ' + "[" * 100000 + "]" * 100000 + ', "ociVersion"', 1), "deep"
    if op < 0.13 and isinstance(parent, dict):
        del parent[key]
    elif op < 0.2 and isinstance(parent, dict):
        parent[rng.choice(["uid", "gid", "umask", "extra", "path", "type", "options", "limit", "\ud800"])] = \
            rng.choice(HOSTILE)
    elif op < 0.25:
        parent[key] = f"@@deep{rng.choice([50, 500, 5000])}@@"
    else:
        parent[key] = rng.choice(HOSTILE)
    return cfg, dotted(path)


def run_cases(lxcri_bin: str, root: Path, bundle: Path, cases: int, seed: int) -> dict[str, Any]:
    """Every case through `lxcri create` (then `delete --force`), with the leak check of the tests."""
    from lxcri_testlib import leftovers, reap_any

    base = json.loads((bundle / "config.json").read_text())
    rng = random.Random(seed)
    tally: dict[str, Any] = {"cases": 0, "created": 0, "refused": 0, "named": 0, "internal": [], "unclear": [],
                             "unnamed": [], "leaks": []}
    for i in range(cases):
        cfg, where = mutate(base, rng)
        text = cfg if isinstance(cfg, str) else _deep_text(json.dumps(cfg))
        (bundle / "config.json").write_text(text)
        cid = f"escape-fuzz-{i}-{uuid.uuid4().hex[:6]}"
        # stdio on files, as conmon gives it: a pipe would stay open in the created container
        with open(bundle / "out", "wb") as out, open(bundle / "err", "w+") as err:
            rc = subprocess.run([lxcri_bin, "--root", str(root), "create", "--bundle", str(bundle), cid],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=120).returncode
            err.seek(0)
            r = subprocess.CompletedProcess([], rc, "", err.read())
        tally["cases"] += 1
        if r.returncode == 0:
            tally["created"] += 1
            subprocess.run([lxcri_bin, "--root", str(root), "delete", "--force", cid], capture_output=True,
                           timeout=120)
            reap_any()
        else:
            tally["refused"] += 1
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            if "internal error" in r.stderr:
                tally["internal"].append((i, where, r.stderr.strip()[-300:]))
            elif r.returncode != 1 or len(lines) != 1:
                tally["unclear"].append((i, where, r.returncode, r.stderr.strip()[-300:]))
            leaf = where.rsplit(".", 1)[-1].split("[", 1)[0]
            if where == "deep" or (leaf and leaf in r.stderr):
                tally["named"] += 1
            else:
                tally["unnamed"].append((i, where, r.stderr.strip()[-200:]))
        if os.environ.get("LXCRI_FUZZ_DUMP"):  # one line a case, to compare two builds
            with open(os.environ["LXCRI_FUZZ_DUMP"], "a") as dump:
                dump.write(json.dumps([i, where, r.returncode, r.stderr.strip()[-160:]]) + "\n")
        left = leftovers(cid, root)
        if left:
            tally["leaks"].append((i, where, left))
            subprocess.run([lxcri_bin, "--root", str(root), "delete", "--force", cid], capture_output=True)
    (bundle / "config.json").write_text(json.dumps(base))
    return tally


def test_fuzz_config(lxcri, make_bundle):
    b = make_bundle(["true"])
    b.config = base_config(["true"])
    b.save()
    assert lxcri.create(b, lxcri.new_id("escape-fuzz-base")).returncode == 0, (b.path / "out.err").read_text()
    tally = run_cases(str(_lxcri_bin()), lxcri.root, b.path, CASES, SEED)
    print(f"\nfuzz seed {SEED}: {_summary(tally)}")
    assert not tally["internal"], tally["internal"][:5]
    assert not tally["unclear"], tally["unclear"][:5]
    assert not tally["leaks"], tally["leaks"][:5]


def _lxcri_bin() -> Path:
    from lxcri_testlib import LXCRI

    return LXCRI


def _summary(t: dict[str, Any]) -> str:
    return (f"{t['cases']} cases: {t['created']} created, {t['refused']} refused "
            f"({t['named']} naming the mutated field), {len(t['internal'])} internal errors, "
            f"{len(t['unclear'])} unclear failures, {len(t['leaks'])} with leftovers")


if __name__ == "__main__":  # the tally on its own, e.g. against another build: LXCRI_BIN=... python this
    import shutil
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else CASES
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else SEED
    import ctypes

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # a subreaper, as the tests are
    work = Path(tempfile.mkdtemp(prefix="lxcri-escape-fuzz-"))
    try:
        from lxcri_testlib import BUSYBOX

        rootfs = work / "bundle" / "rootfs"
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc"):
            (rootfs / d).mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        subprocess.run(["chroot", str(rootfs), "/bin/busybox", "--install", "-s"], check=True)
        (work / "bundle" / "config.json").write_text(json.dumps(base_config(["true"])))
        tally = run_cases(str(_lxcri_bin()), work / "root", work / "bundle", cases, seed)
        print(f"fuzz seed {seed}: {_summary(tally)}")
        for i, where, msg in tally["internal"]:
            print(f"  internal #{i} at {where}: {msg.splitlines()[-1][:200]}")
        for item in tally["unnamed"][:40]:
            print(f"  unnamed: {item}")
        for item in tally["unclear"][:20]:
            print(f"  unclear: {item}")
        for item in tally["leaks"][:20]:
            print(f"  leak: {item}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

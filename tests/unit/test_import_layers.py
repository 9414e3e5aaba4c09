"""The import graph of the runtime and of the agent, drawn from the code: one-way layers and no
import cycle.

The layers and the other contracts are in pyproject.toml ([tool.importlinter]); `lint-imports`
(import-linter, on grimp's graph of every import, those inside functions included) checks them.
The cycle check below is on single modules, finer than import-linter's acyclic_siblings contract,
which sees packages: a cycle between two modules of one package is a tangle all the same.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports() -> list[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return [found]


def test_lint_imports_keeps_every_contract():
    r = subprocess.run([*_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'runtime'}:{ROOT / 'agent'}"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (or a module importing itself):
    Tarjan's algorithm, iteratively (the graph is small, but recursion depth is not ours to spend)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in edges.get(node, ()):
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package, where", [("lxcri", "runtime"), ("lxcri_agent", "agent")])
def test_no_import_cycle_between_modules(package: str, where: str) -> None:
    grimp = pytest.importorskip("grimp")
    sys.path.insert(0, str(ROOT / where))
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    found = cycles(edges)
    assert not found, f"import cycles in {package}:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_runtime_installs_without_the_agents_dependencies():
    """`pip install lxcri` is the runtime; kopf, kubernetes and the rest come with the `agent`
    extra only (the import contract `no-agent-deps` keeps the runtime's code from needing them)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    agent = {d.split(">")[0].split("=")[0].strip().lower() for d in project["optional-dependencies"]["agent"]}
    assert base == {"lxc", "structlog", "pyyaml"}
    assert {"kopf", "kubernetes", "tomlkit", "jeepney", "prometheus-client"} <= agent


def test_no_product_source_file_over_400_lines() -> None:
    """A file a maintainer can read at one sitting: the runtime (C helpers included) and the agent."""
    sources = [p for d in ("runtime/lxcri", "agent/lxcri_agent") for p in (ROOT / d).rglob("*")
               if p.suffix in (".py", ".c", ".h") and p.is_file()]
    long = {str(p.relative_to(ROOT)): n for p in sources if (n := len(p.read_bytes().splitlines())) > 400}
    assert sources and not long, long

"""Render charts/lxcri in-process with the real Helm engine (helm-python-sdk)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml
from chartkit import CHART, Objects


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as c:
        yield c


@pytest.fixture(scope="session")
def render(chart: helm.Chart) -> Callable[..., Objects]:
    """render(values, tests=False) -> the rendered objects (the `helm test` pod only if asked)."""

    def _render(values: dict[str, Any] | None = None, tests: bool = False) -> Objects:
        out = chart.render(values or {}, name="lxcri", namespace="lxcri-system", is_install=True)
        return [doc for path, text in sorted(out.items())
                if path.endswith(".yaml") and (tests or "/tests/" not in path)
                for doc in yaml.safe_load_all(text) if doc]

    return _render


"""structlog set-up: JSON lines in the cluster (kubectl logs, log shippers), readable on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any


def setup(*, json_output: bool | None = None, level: int = logging.INFO) -> None:
    """Configure structlog once; JSON unless stderr is a terminal (a human is watching)."""
    import structlog

    if json_output is None:
        json_output = not sys.stderr.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json_output:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    # the stdlib loggers of the libraries (and of the report module) go through the same renderer
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, processors[-1]],
            foreign_pre_chain=[*processors[:-1], structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    """A bound logger named after the component; structlog is imported only when logging is used."""
    import structlog

    return structlog.get_logger(name)

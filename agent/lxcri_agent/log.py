"""The agent's one logging set-up, for every program (``lxcri-agent``'s commands, ``lxcri-operator``):
structlog, JSON lines in the cluster (kubectl logs, log shippers), readable text on a terminal.

The stdlib loggers (kopf's, the kubernetes client's, the reporter's and the operator's) go through
the same renderer via structlog's ProcessorFormatter, so a program writes one format, not two.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .settings import AgentSettings


def setup(settings: AgentSettings, *, quiet: tuple[str, ...] = ()) -> None:
    """Configure structlog and the root logger once, from the settings' log format and level;
    JSON unless stderr is a terminal (a human is watching) or the settings say otherwise.
    ``quiet`` names stdlib loggers held at WARNING unless the level is debug (kopf's per-object
    lines: Nodes change every few minutes each)."""
    import structlog

    level = settings.log_level_number
    json_output = settings.log_json
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
    for name in quiet:
        if level > logging.DEBUG:
            logging.getLogger(name).setLevel(logging.WARNING)
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

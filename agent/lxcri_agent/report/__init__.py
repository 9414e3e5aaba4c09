"""What a node reports about lxcri on itself: probe, publish on its own Node, withdraw."""

from .model import DEFAULT_PREFIX, Report
from .probe import ProbeConfig, probe
from .publish import Publisher, withdraw
from .reporter import run_reporter

__all__ = ["DEFAULT_PREFIX", "ProbeConfig", "Publisher", "Report", "probe", "run_reporter", "withdraw"]

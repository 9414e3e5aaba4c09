"""Unit tests import the runtime package from the source tree; no root, no containers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "runtime"))

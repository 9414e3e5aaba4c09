"""Entry point of the bundled runtime (the PyInstaller script; it is not imported by the agent).

Two things differ from the venv, and are settled here before the runtime's own main:

* The bootloader re-executes itself with ``LD_LIBRARY_PATH`` pointing into the bundle. This
  process keeps that search path (the loader read it at start), but the programs the runtime
  starts — OCI hooks above all — must see the caller's environment, not our libz and libcrypto.
* A re-execution of this program (the runtime runs ``lxcri hook`` for its hook points) must
  start as a fresh instance, not as a child of this one (``PYINSTALLER_RESET_ENVIRONMENT``).
"""

import os
import sys


def _restore_environment() -> None:
    orig = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if orig is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = orig
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"


def main() -> int:
    _restore_environment()
    from lxcri.entry import main as lxcri_main  # type: ignore[import-not-found,unused-ignore]

    return int(lxcri_main() or 0)


if __name__ == "__main__":
    sys.exit(main())

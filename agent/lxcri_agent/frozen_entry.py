"""Entry point of the bundled runtime (the PyInstaller script; it is not imported by the agent).

Three things differ from the venv, and are settled here before the runtime's own main:

* The bootloader re-executes itself with ``LD_LIBRARY_PATH`` pointing into the bundle. This
  process keeps that search path (the loader read it at start), but the programs the runtime
  starts — OCI hooks above all — must see the caller's environment, not our libz and libcrypto.
* Code that re-executes ``sys.executable`` as a Python interpreter (``-I -m MODULE``, as the
  runtime once did for its hooks; it now runs ``lxcri hook``) would, frozen, start this program.
  So it plays the interpreter for ``[-I|-S|-E|-s|-B|-u]... -m MODULE ARGS`` and ``... -c CODE``.
* Such a re-execution must start as a fresh instance, not as a child of this one
  (``PYINSTALLER_RESET_ENVIRONMENT``).
"""

import os
import sys

_PY_FLAGS = {"-I", "-S", "-E", "-s", "-B", "-u", "-O", "-OO"}


def _restore_environment() -> None:
    orig = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if orig is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = orig
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"


def _as_interpreter(argv: list[str]) -> bool:
    i = 1
    while i < len(argv) and argv[i] in _PY_FLAGS:
        i += 1
    if i >= len(argv) or argv[i] not in ("-m", "-c"):
        return False
    if argv[i] == "-m" and i + 1 < len(argv):
        import runpy

        sys.argv = [argv[0], *argv[i + 2 :]]
        runpy.run_module(argv[i + 1], run_name="__main__", alter_sys=True)
        return True
    if argv[i] == "-c" and i + 1 < len(argv):
        sys.argv = ["-c", *argv[i + 2 :]]
        exec(compile(argv[i + 1], "<string>", "exec"), {"__name__": "__main__"})
        return True
    return False


def main() -> int:
    _restore_environment()
    if _as_interpreter(sys.argv):
        return 0
    from lxcri.entry import main as lxcri_main  # type: ignore[import-not-found,unused-ignore]

    return int(lxcri_main() or 0)


if __name__ == "__main__":
    sys.exit(main())

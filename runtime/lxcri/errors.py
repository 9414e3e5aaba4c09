"""The exception types of lxcri, one per layer.

The CLI turns any of them into one line on stderr (and in the --log file) and exit
status 1. Messages are written in the user's terms: they end up in `kubectl
describe pod` through the shims, and CRI-O matches some of them ("container not
running", "no such process") to detect gone containers. So the message stays the
whole of what a caller sees; what an error also carries is for logs and tests:

- `field`: the config.json field or command-line flag at fault ("process.args", "--pid-file");
- `cid`: the container the call was about;
- the cause: raise it `from` the OSError (or other) it comes from, never `from None`;
  the message already says it in the user's terms, and `--debug` logs the cause as well.
"""


class LxcriError(Exception):
    """Any failure a user should see as a one-line error."""

    def __init__(self, msg: str = "", *, field: str = "", cid: str = "") -> None:
        super().__init__(msg)
        self.field = field
        self.cid = cid

    @property
    def cause(self) -> BaseException | None:
        """What went wrong underneath (an OSError, a JSON error), if the raise named it."""
        return self.__cause__ or (None if self.__suppress_context__ else self.__context__)


class UsageError(LxcriError):
    """Bad command line."""


class SpecError(LxcriError):
    """The bundle or its config.json is not acceptable."""


class NotFoundError(LxcriError):
    """No container with that ID."""


class StateError(LxcriError):
    """The container is not in a state that allows the operation."""


class TranslateError(SpecError):
    """A part of the OCI config cannot be expressed as liblxc config."""


class CgroupError(LxcriError):
    """A cgroup operation failed."""

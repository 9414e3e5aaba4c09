"""The exception types of lxcri, one per layer.

The CLI turns any of them into one line on stderr (and in the --log file) and exit
status 1. Messages are written in the user's terms: they end up in `kubectl
describe pod` through the shims, and CRI-O matches some of them ("container not
running", "no such process") to detect gone containers.
"""


class LxcriError(Exception):
    """Any failure a user should see as a one-line error."""


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

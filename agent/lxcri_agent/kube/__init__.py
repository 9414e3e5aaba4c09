"""The few Kubernetes API calls the reporter and the operator make, behind one small interface.

Keeping them behind :class:`NodeAPI` lets the same logic run against the real API server
(:mod:`.client`) and against an in-process fake (tests/fakekube, not shipped) that tests and the scale
benchmark use, with the same failure modes (409, 410, 5xx).
"""

from .api import ApiError, Conflict, Expired, NodeAPI, NotFound, WatchEvent

__all__ = ["ApiError", "Conflict", "Expired", "NodeAPI", "NotFound", "WatchEvent"]

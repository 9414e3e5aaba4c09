"""lxcri: an OCI container runtime on liblxc, driven like runc."""

__version__ = "0.1.0"
OCI_VERSION = "1.2.0"

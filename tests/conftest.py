"""Fixtures for the runtime tests; the helpers themselves live in lxcri_testlib."""

from lxcri_testlib import lxcri, make_bundle, pytest_configure, rootfs_template

__all__ = ["lxcri", "make_bundle", "pytest_configure", "rootfs_template"]

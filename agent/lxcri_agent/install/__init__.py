"""Putting lxcri on a node and taking it off again: the tree, CRI-O, containerd, and the reload.

One module per concern; :mod:`.plan` orders them and keeps the manifest in step.
"""

"""Putting lxcri on a node and taking it off again: the tree, CRI-O, containerd, and the reload.

One module per concern; :mod:`.plan` orders them and hands each step one :class:`.context.Install`
(host, manifest, settings, validator, what is wanted) that also keeps the manifest in step.
"""

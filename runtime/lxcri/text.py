"""What a string may contain before it goes into liblxc's config, a cgroup file or a C string.

Below oci/, lxcconf/ and cgroups/, which all check values with it.
"""

from __future__ import annotations


def control_char(value: str) -> str | None:
    """The first character liblxc's config or a C string could take for a line end, a field
    separator or an end of string (any ASCII control character, tab included), or a lone
    surrogate (no UTF-8 for liblxc): None when there is none."""
    for ch in value:
        if ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff":
            return ch
    return None

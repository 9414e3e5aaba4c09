"""JSON for the per-call hot path (state, start, kill, delete) without the json package.

`import json` pulls in re, enum and friends: ~5 ms on every runtime call, and
CRI-O calls `state` all the time. The C accelerator `_json` that json itself uses
has the scanner and the string encoder; this wraps them, and falls back to the
json package where `_json` is missing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json

    class _Context:
        """The attributes _json.make_scanner reads from a JSONDecoder."""

        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float
        memo: dict[str, str] = {}  # noqa: RUF012

    _scan: Any = _json.make_scanner(_Context())  # type: ignore[arg-type]
    _quote = _json.encode_basestring_ascii
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other interpreters
    _scan = None


def loads(text: str) -> Any:
    if _scan is None:
        import json

        return json.loads(text)
    text = text.strip()
    try:
        obj, end = _scan(text, 0)
    except (StopIteration, SystemError, ValueError) as e:
        raise ValueError("invalid JSON") from e
    if end != len(text):
        raise ValueError("extra data after JSON value")
    return obj


def dumps(obj: Any, indent: int = 0) -> str:
    if _scan is None:
        import json

        return json.dumps(obj, indent=indent or None)
    out: list[str] = []
    _encode(obj, out, indent, 0)
    return "".join(out)


def _encode(o: Any, out: list[str], indent: int, level: int) -> None:
    if o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, str):
        out.append(_quote(o))
    elif isinstance(o, int):
        out.append(str(int(o)))
    elif isinstance(o, float):
        out.append(repr(o))
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        nl = "\n" + " " * (indent * (level + 1)) if indent else ""
        out.append("{")
        for i, (k, v) in enumerate(o.items()):
            if i:
                out.append(",")
            out.append(nl)
            out.append(_quote(str(k)))
            out.append(": " if indent else ":")
            _encode(v, out, indent, level + 1)
        out.append("\n" + " " * (indent * level) if indent else "")
        out.append("}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        nl = "\n" + " " * (indent * (level + 1)) if indent else ""
        out.append("[")
        for i, v in enumerate(o):
            if i:
                out.append(",")
            out.append(nl)
            _encode(v, out, indent, level + 1)
        out.append("\n" + " " * (indent * level) if indent else "")
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(o).__name__} as JSON")

"""Azure Functions route templates as werkzeug routing rules.

Templates follow ASP.NET routing: `{name}`, `{name:int}` (and the other constraints below), `{name?}`
(optional, only at the end) and `{*rest}` (catch-all, may be empty). Route values reach the function as
strings, as they do in Azure, so every converter here matches text and hands it over unchanged.
"""

from __future__ import annotations

import re

from werkzeug.routing import BaseConverter, PathConverter


class _Constrained(BaseConverter):
    # A constrained parameter wins over a plain one at the same place, as in ASP.NET routing.
    weight = 50


class _Int(_Constrained):
    regex = r"-?\d+"


class _Alpha(_Constrained):
    regex = r"[A-Za-z]+"


class _Bool(_Constrained):
    regex = r"(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])"


class _Guid(_Constrained):
    regex = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"


class _Number(_Constrained):
    regex = r"-?\d+(?:\.\d+)?"


class _CatchAll(PathConverter):
    """`{*rest}`: the rest of the path, slashes included."""


CONVERTERS: dict[str, type[BaseConverter]] = {
    "az_int": _Int,
    "az_alpha": _Alpha,
    "az_bool": _Bool,
    "az_guid": _Guid,
    "az_number": _Number,
    "az_rest": _CatchAll,
}

# ASP.NET route constraint -> converter name ("default" is werkzeug's one-segment string converter).
_CONSTRAINTS = {
    "": "default",
    "int": "az_int",
    "long": "az_int",
    "alpha": "az_alpha",
    "bool": "az_bool",
    "guid": "az_guid",
    "double": "az_number",
    "decimal": "az_number",
    "float": "az_number",
    "datetime": "default",
}

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?(\?)?\}")


def template_to_rules(prefix: str, template: str) -> list[str]:
    """The werkzeug rule strings that together match an Azure route template under the route prefix.

    An optional or catch-all tail becomes two rules: with the tail and without it.
    """
    head = [prefix.strip("/")] if prefix.strip("/") else []
    segments = [s for s in template.strip("/").split("/") if s]
    parts: list[str] = []
    optional_from: int | None = None
    for index, segment in enumerate(segments):
        match = _PARAM.fullmatch(segment)
        if match is None:
            if "{" in segment or "}" in segment or "<" in segment or ">" in segment:
                raise ValueError(f"route {template!r}: segment {segment!r} is not supported by the local host")
            parts.append(segment)
            if optional_from is not None:
                raise ValueError(f"route {template!r}: only the last segments may be optional")
            continue
        star, name, constraint, optional = match.groups()
        constraint = (constraint or "").lower()
        if constraint not in _CONSTRAINTS:
            raise ValueError(f"route {template!r}: constraint {constraint!r} is not supported by the local host")
        converter = "az_rest" if star else _CONSTRAINTS[constraint]
        parts.append(f"<{converter}:{name}>")
        if star or optional:
            if optional_from is None:
                optional_from = index
        elif optional_from is not None:
            raise ValueError(f"route {template!r}: only the last segments may be optional")
    rules = ["/" + "/".join(head + parts)]
    if optional_from is not None:
        # Each optional tail segment may be left off, from the last one back.
        for end in range(len(parts) - 1, optional_from - 1, -1):
            rules.append("/" + "/".join(head + parts[:end]))
    return rules

"""The YAML 1.2 core schema's plain scalars: which text is a null, a boolean, an integer or a float.

Pulumi reads stack files with Go's yaml.v3, which types scalars this way (`yes`, `on`, `2024-01-01` and `017`-as-octal
are YAML 1.1 and stay text or decimal here). `etlctl.stack_config` reads files with these rules, and the settings
loader applies them to top-level values, which the engine hands the program as the text written in the file.
"""

from __future__ import annotations

import math
import re
from typing import Any

# tag -> (pattern of the whole plain scalar, the characters it can start with; "" for the empty scalar)
IMPLICIT: dict[str, tuple[re.Pattern[str], list[str]]] = {
    "bool": (re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    "int": (re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    "float": (
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    ),
    "null": (re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
}


def construct(kind: str, text: str) -> Any:
    """The value of a scalar of core-schema type `kind` (`null`, `bool`, `int`, `float`, `str`)."""
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    if kind == "int":
        for prefix, base in (("0o", 8), ("0x", 16)):
            if text.startswith(prefix):
                return int(text[len(prefix) :], base)
        return int(text, 10)
    if kind == "float":
        special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
        return special[text.lower()] if text.lower() in special else float(text)
    return text


def plain_scalar(text: str) -> Any:
    """What an unquoted scalar written as `text` means: None, a bool, an int, a float or the text itself."""
    for kind, (pattern, _) in IMPLICIT.items():
        if pattern.fullmatch(text):
            return construct(kind, text)
    return text

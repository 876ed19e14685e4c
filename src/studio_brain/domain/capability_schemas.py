"""Capability input schemas: the JSON-Schema subset a capability's ``input`` may use, the check of a schema
itself (``schema_problems``, for lint) and of a value against it (``validate_input``, at propose time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SCHEMA_TYPES = {"object", "string", "integer", "number", "boolean", "array"}
_SCHEMA_KEYS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "items",
    "maxItems",
    "description",
}


def schema_problems(schema: Mapping[str, Any], path: str = "input") -> list[str]:
    """What is wrong with a schema (we support a JSON-Schema subset; anything else is an error)."""
    problems: list[str] = []
    for key in sorted(set(schema) - _SCHEMA_KEYS):
        problems.append(f"{path}: unsupported schema keyword {key!r}")
    kind = schema.get("type")
    if kind not in _SCHEMA_TYPES:
        problems.append(f"{path}.type must be one of {sorted(_SCHEMA_TYPES)}")
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        problems.append(f"{path}.properties must be a table")
        props = {}
    for name, sub in props.items():
        if not isinstance(sub, Mapping):
            problems.append(f"{path}.properties.{name} must be a table")
        else:
            problems.extend(schema_problems(sub, f"{path}.{name}"))
    required = schema.get("required", [])
    if not isinstance(required, list) or any(r not in props for r in required):
        problems.append(f"{path}.required must list declared properties")
    items = schema.get("items")
    if items is not None:
        if isinstance(items, Mapping):
            problems.extend(schema_problems(items, f"{path}[]"))
        else:
            problems.append(f"{path}.items must be a table")
    pattern = schema.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error:
            problems.append(f"{path}.pattern is not a valid regular expression")
    return problems


def validate_input(schema: Mapping[str, Any], value: Any, path: str = "$") -> list[str]:
    """Every way ``value`` fails ``schema`` (empty when valid). Objects reject unknown keys by default."""
    kind = schema.get("type")
    errors: list[str] = []
    if kind == "object":
        if not isinstance(value, Mapping):
            return [f"{path}: expected an object"]
        props: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name}: required")
        if not schema.get("additionalProperties", False):
            errors.extend(f"{path}.{name}: not allowed" for name in value if name not in props)
        for name, item in value.items():
            if name in props:
                errors.extend(validate_input(props[name], item, f"{path}.{name}"))
        return errors
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        if "\x00" in value:  # PostgreSQL text and jsonb cannot store NUL
            return [f"{path}: contains a NUL character"]
        if len(value) < int(schema.get("minLength", 0)):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > int(schema["maxLength"]):
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.fullmatch(str(schema["pattern"]), value):
            errors.append(f"{path}: does not match {schema['pattern']}")
    elif kind in ("integer", "number"):
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or (kind == "integer" and not isinstance(value, int)):
            return [f"{path}: expected an {kind}"]
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: above {schema['maximum']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [f"{path}: expected true or false"]
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected an array"]
        if "maxItems" in schema and len(value) > int(schema["maxItems"]):
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if isinstance(schema.get("items"), Mapping):
            for i, item in enumerate(value):
                errors.extend(validate_input(schema["items"], item, f"{path}[{i}]"))
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: must be one of {schema['enum']}")
    return errors

"""Filling a tool's arguments from its JSON schema and the conversation, by rule.

Values come, in order of trust, from: an earlier tool result with a field of the same name (a
looked-up `customer_id` feeds the next call), a pattern the property asks for (an email, a URL,
an enum value named in the text, a number after the property's name), the schema's `default`,
and finally the user's own words for free text. Required properties are always filled with a
value of the right type; optional ones only when the conversation supplied one.
"""

from __future__ import annotations

import re
from typing import Any

from tether.foundation.models.local.text import sentences, stems

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s<>\"')]+")
_TITLE_NAMES = {"title", "subject", "name", "summary", "headline"}
_TYPE_OF = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array"}


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` and pick the first non-null branch of `anyOf`/`oneOf`."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _resolve(merged, root)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                resolved = _resolve(branch, root)
                if resolved.get("type") != "null":
                    return {**resolved, **{k: v for k, v in schema.items() if k != key}}
    return schema


def _kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None and "enum" in schema:
        kind = _TYPE_OF.get(type(schema["enum"][0]), "string")
    return str(kind or "string")


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = _kind(schema)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = {"string": str, "boolean": bool, "array": list, "object": dict}.get(kind)
    return expected is not None and isinstance(value, expected)


def _found(name: str, schema: dict[str, Any], text: str) -> Any:
    """A value the text itself supplies for this property, or None."""
    kind = _kind(schema)
    lowered = name.lower()
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        mentioned = stems(text)
        for option in schema["enum"]:
            if isinstance(option, str) and stems(option.replace("_", " ")) <= mentioned:
                return option
        return None
    if kind == "string":
        if "email" in lowered or schema.get("format") == "email":
            match = _EMAIL.search(text)
            return match.group(0) if match else None
        if any(k in lowered for k in ("url", "uri", "link")) or schema.get("format") == "uri":
            match = _URL.search(text)
            return match.group(0) if match else None
    if kind in ("integer", "number"):
        label = re.escape(lowered.replace("_id", "").replace("_", " "))
        match = re.search(rf"\b{label}\w*\s*(?:#|no\.?|number|id)?\s*(\d+(?:\.\d+)?)", text, re.I)
        if match:
            number = float(match.group(1))
            return int(number) if kind == "integer" else number
    return None


def _fallback(name: str, schema: dict[str, Any], root: dict[str, Any], text: str) -> Any:
    """A well-typed value when nothing in the conversation names one."""
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = _kind(schema)
    if kind == "string":
        value = text.strip()
        if name.lower() in _TITLE_NAMES:
            value = (sentences(value) or [value])[0][:80]
        limit = schema.get("maxLength")
        return value[:limit] if isinstance(limit, int) else value
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    if kind == "array":
        items = _resolve(schema.get("items", {}), root)
        count = int(schema.get("minItems", 0))
        return [_fallback(name, items, root, text) for _ in range(count)]
    if kind == "object":
        return fill_arguments(schema, text, {}, root)
    return None


def _needs_evidence(name: str, schema: dict[str, Any]) -> bool:
    """Whether a guessed value would be made up: numbers, ids, emails and links must come from
    the conversation; free text and properties with a default may be filled by rule."""
    if "default" in schema or "const" in schema:
        return False
    kind = _kind(schema)
    lowered = name.lower()
    if kind == "string" and "enum" not in schema:
        return any(k in lowered for k in ("email", "url", "uri", "link")) or lowered.endswith("_id")
    return kind in ("integer", "number")


def ungrounded(schema: dict[str, Any], text: str, known: dict[str, Any]) -> list[str]:
    """Required properties the conversation gives no value for and that can't be made up: a
    tool with any is better called after another tool has looked them up."""
    schema = _resolve(schema, schema)
    missing: list[str] = []
    for name in schema.get("required", []):
        prop = _resolve(schema.get("properties", {}).get(name, {}), schema)
        value = known.get(name)
        grounded = value is not None and _fits(value, prop)
        if not grounded and _needs_evidence(name, prop) and _found(name, prop, text) is None:
            missing.append(name)
    return missing


def fill_arguments(
    schema: dict[str, Any],
    text: str,
    known: dict[str, Any],
    root: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Arguments for an object schema: required ones always, optional ones when supplied."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    arguments: dict[str, Any] = {}
    for name, raw in properties.items():
        prop = _resolve(raw, root)
        value = known.get(name)
        if value is None or not _fits(value, prop):
            value = _found(name, prop, text)
        if value is None and name in required:
            value = _fallback(name, prop, root, text)
        if value is not None:
            arguments[name] = value
    return arguments

"""Configuration check with one clear message per mistake.

Snakemake's own ``validate`` fills defaults; this check runs first so that a
misspelt key, a wrong type or a bad value is reported in the project's
message form (file, key, value, expectation) instead of a schema dump.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path

import jsonschema
import yaml

from sepher.errors import InputError


def _key_path(error) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _allowed_keys(schema, path):
    node = schema
    for part in path:
        node = node.get("properties", {}).get(part, {})
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return sorted(node.get("properties", {}))


def load_schema(schema_path) -> dict:
    """Load a YAML JSON schema, inlining ``$ref`` to sibling schema files.

    Each stage keeps its section in its own file (``config/schemas/<stage>.schema.yaml``),
    referenced from the main schema as ``$ref: <stage>.schema.yaml``.
    """
    schema_path = Path(schema_path)
    with schema_path.open() as stream:
        schema = yaml.safe_load(stream)

    def inline(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.endswith(".yaml"):
                return load_schema(schema_path.parent / ref)
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return inline(schema)


def fill_defaults(config: dict, schema: dict) -> dict:
    """Insert the schema's ``default`` of every absent key, recursively (in place)."""
    defs = schema.get("$defs", {})

    def resolve(node):
        ref = node.get("$ref", "")
        return defs[ref.rsplit("/", 1)[-1]] if ref.startswith("#/$defs/") else node

    def fill(instance, node):
        node = resolve(node)
        for key, sub in node.get("properties", {}).items():
            sub = resolve(sub)
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if isinstance(instance.get(key), dict):
                fill(instance[key], sub)

    fill(config, schema)
    return config


def check_config(config: dict, schema_path, config_file="config") -> dict:
    """Validate `config`, fill its defaults and return it.

    Raises :class:`InputError` for the first schema violation in `config`.

    Parameters
    ----------
    config : dict
        The merged configuration.
    schema_path : path
        JSON schema (YAML) with ``additionalProperties: false``.
    config_file : str
        Name of the config file(s), for the message.
    """
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if not errors:
        return fill_defaults(config, schema)
    error = errors[0]
    if error.validator == "additionalProperties":
        allowed = _allowed_keys(schema, list(error.absolute_path))
        unknown = [k for k in error.instance if k not in allowed]
        key = unknown[0] if unknown else "?"
        prefix = _key_path(error)
        full = key if prefix == "(top level)" else f"{prefix}.{key}"
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"Did you mean '{close[0]}'?" if close else None
        raise InputError(
            config_file,
            "one of the documented keys: " + ", ".join(allowed),
            column=full,
            value=key,
            hint=hint,
        )
    expected = error.schema.get("description") or ""
    if error.validator == "enum":
        expected = "one of " + ", ".join(repr(v) for v in error.validator_value)
    hint = None
    if error.validator == "type":
        types = error.validator_value
        types = " or ".join(types) if isinstance(types, list) else types
        expected = f"a value of type {types}"
        if "default" in error.schema:
            expected += f" (default: {json.dumps(error.schema['default'])})"
        if isinstance(error.instance, str) and _is_number(error.instance):
            hint = "Write numbers without quotes: YAML reads a quoted value as text."
    elif error.validator != "enum":
        expected = f"{error.message}" + (f" ({expected})" if expected else "")
    raise InputError(
        config_file, expected, column=_key_path(error), value=error.instance, hint=hint
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

"""Configuration check with one clear message per mistake, and the defaults.

:func:`check_config` reports a misspelt key, a wrong type or a bad value in
the project's message form (file, key, value, expectation) instead of a
schema dump, then fills in the schema's default of every key the config
leaves out (jsonschema validates but never fills). The schemas in
``config/schemas`` are the one source of defaults: :func:`schema_defaults`
gives the configuration they define, and ``tests/test_defaults.py`` checks
that ``config/config.yaml`` and the library's own defaults agree with them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import yaml

from sepher.errors import InputError, did_you_mean


def _key_path(error) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _allowed_keys(schema, path):
    node = resolve_ref(schema, schema)
    for part in path:
        node = resolve_ref(node.get("properties", {}).get(part, {}), schema)
    return sorted(node.get("properties", {}))


def resolve_ref(node: dict, schema: dict) -> dict:
    """`node` with a local ``$ref: "#/$defs/<name>"`` replaced by its definition.

    Keywords beside the ``$ref`` apply too (JSON Schema 2020-12): they are
    merged into the definition, ``properties`` key by key, so a reference can
    give a shared definition its own defaults.
    """
    ref = node.get("$ref", "")
    if not ref.startswith("#/$defs/"):
        return node
    merged = dict(schema["$defs"][ref.removeprefix("#/$defs/")])
    for key, value in node.items():
        if key == "$ref":
            continue
        if key == "properties":
            properties = dict(merged.get("properties", {}))
            for name, sub in value.items():
                properties[name] = {**properties.get(name, {}), **sub}
            merged["properties"] = properties
        else:
            merged[key] = value
    return merged


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
    """Insert the schema's ``default`` of every absent key, recursively (in place).

    An object's default (usually ``{}``) is filled in turn, so leaving out a
    whole section gives every key of it its default.
    """

    def fill(instance, node):
        node = resolve_ref(node, schema)
        for key, sub in node.get("properties", {}).items():
            sub = resolve_ref(sub, schema)
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if isinstance(instance.get(key), dict):
                fill(instance[key], sub)

    fill(config, schema)
    return config


def schema_defaults(schema) -> dict:
    """The configuration a schema's defaults make: every key with a default, nested.

    Parameters
    ----------
    schema : path or dict
        A schema file (``$ref`` to sibling files inlined, see :func:`load_schema`),
        e.g. ``config/schemas/config.schema.yaml`` for the whole configuration or
        ``config/schemas/imaging.schema.yaml`` for one stage's section, or a
        loaded schema.

    Returns
    -------
    dict
        What :func:`check_config` makes of an empty configuration.
    """
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    return fill_defaults({}, schema)


def check_config(config: dict, schema_path, config_file="config") -> dict:
    """Validate `config`, fill in the defaults of the keys it leaves out, return it.

    Raises :class:`InputError` for the first schema violation in `config`.
    Every key `config` leaves out gets the schema's default
    (:func:`fill_defaults`, in place), so the rules can read any documented
    key: a configuration of only the inputs runs with the schema's defaults.

    Parameters
    ----------
    config : dict
        The merged configuration.
    schema_path : path
        JSON schema (YAML) with ``additionalProperties: false``.
    config_file : str
        Name of the config file(s), for the message.

    Returns
    -------
    dict
        `config` itself, with the defaults filled in.
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
        hint = did_you_mean(key, allowed)
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
        default = _default_at(schema, list(error.absolute_path))
        if default is not _NO_DEFAULT and not isinstance(default, dict):
            expected += f" (default: {json.dumps(default)})"
        if isinstance(error.instance, str) and _is_number(error.instance):
            hint = "Write numbers without quotes: YAML reads a quoted value as text."
    elif error.validator != "enum":
        expected = f"{error.message}" + (f" ({expected})" if expected else "")
    raise InputError(
        config_file, expected, column=_key_path(error), value=error.instance, hint=hint
    )


_NO_DEFAULT = object()


def _default_at(schema: dict, path: list):
    """The schema default of the key at `path`, or ``_NO_DEFAULT``."""
    node = schema_defaults(schema)
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _NO_DEFAULT
        node = node[part]
    return node


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

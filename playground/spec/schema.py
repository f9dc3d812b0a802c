"""Field schemas: what a handoff carries, what an agent accepts and returns.

A schema is written either as a map of field to type name::

    {customer_id: str, question: str, priority: int?}

or as a JSON Schema object (``type: object`` with ``properties``). Both become a
:class:`Schema`, which validates (with pydantic's lax coercion, so ``"3"`` is a
fine ``int``) and renders the JSON Schema offered to a model as tool parameters.

A JSON Schema means all it says: after the fields' types, the whole schema (enum,
const, pattern, format, numeric and length bounds, nested objects, array items,
``additionalProperties``, ...) is enforced by the ``jsonschema`` library, and the
model is offered the schema as written. A malformed JSON Schema is refused when the
file loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NotRequired, Required

import jsonschema
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

_TYPES: dict[str, tuple[Any, dict[str, Any]]] = {
    "str": (str, {"type": "string"}),
    "int": (int, {"type": "integer"}),
    "float": (float, {"type": "number"}),
    "bool": (bool, {"type": "boolean"}),
    "dict": (dict[str, Any], {"type": "object"}),
    "list": (list[Any], {"type": "array"}),
    "any": (Any, {}),
    "list[str]": (list[str], {"type": "array", "items": {"type": "string"}}),
    "list[int]": (list[int], {"type": "array", "items": {"type": "integer"}}),
    "list[float]": (list[float], {"type": "array", "items": {"type": "number"}}),
    "list[bool]": (list[bool], {"type": "array", "items": {"type": "boolean"}}),
    "list[dict]": (list[dict[str, Any]], {"type": "array", "items": {"type": "object"}}),
}
_JSON_TO_NAME = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "object": "dict",
    "array": "list",
}

TYPE_NAMES = tuple(_TYPES)


class SchemaError(ValueError):
    """A schema is malformed; ``key`` names the offending field, if any."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Field:
    """One field of a schema."""

    name: str
    type_name: str
    optional: bool = False
    description: str = ""


@dataclass(frozen=True)
class Schema:
    """A validated record shape.

    Attributes:
        fields: The fields in declaration order.
    """

    fields: tuple[Field, ...]
    _adapter: TypeAdapter[Any] = field(repr=False, compare=False, hash=False)
    source: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """The JSON Schema as written, when the schema was written as one."""

    @classmethod
    def parse(cls, raw: Any, name: str = "Payload") -> Schema:
        """Build a schema from its YAML form; raises :class:`SchemaError`."""
        if not isinstance(raw, dict):
            raise SchemaError("a schema is a map of field to type, e.g. {question: str}")
        if raw.get("type") == "object" or isinstance(raw.get("properties"), dict):
            return cls._from_json_schema(raw, name)
        fields = []
        for key, type_name in raw.items():
            if not isinstance(type_name, str):
                raise SchemaError(
                    f"type of {key!r} must be a type name such as 'str', not {type_name!r}", key
                )
            optional = type_name.endswith("?")
            base = type_name.rstrip("?").replace(" ", "")
            if base not in _TYPES:
                raise SchemaError(
                    f"unknown type {type_name!r} for {key!r}; use one of {', '.join(_TYPES)}"
                    " (add '?' for optional)",
                    key,
                )
            fields.append(Field(str(key), base, optional))
        return cls._build(tuple(fields), name)

    @classmethod
    def _from_json_schema(cls, raw: dict[str, Any], name: str) -> Schema:
        try:
            jsonschema.Draft202012Validator.check_schema(raw)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(schema)"
            raise SchemaError(f"not a valid JSON Schema at {where}: {exc.message}") from None
        props = raw.get("properties") or {}
        required = set(raw.get("required") or [])
        fields = []
        for key, prop in props.items():
            if not isinstance(prop, dict):
                raise SchemaError(f"property {key!r} must be a JSON Schema object", key)
            json_type = prop.get("type", "any")
            type_name = _JSON_TO_NAME.get(json_type, "any") if isinstance(json_type, str) else "any"
            if type_name == "list" and isinstance(prop.get("items"), dict):
                item = _JSON_TO_NAME.get(prop["items"].get("type", ""), "")
                if f"list[{item}]" in _TYPES:
                    type_name = f"list[{item}]"
            fields.append(Field(str(key), type_name, key not in required, str(prop.get("description", ""))))
        return cls._build(tuple(fields), name, raw)

    @classmethod
    def _build(cls, fields: tuple[Field, ...], name: str, source: dict[str, Any] | None = None) -> Schema:
        # A TypedDict validates straight to a dict: ~0.6 µs against ~2.3 µs for a model and
        # model_dump, and a handoff validates its payload on every hop.
        definitions: dict[str, Any] = {}
        for f in fields:
            py_type = _TYPES[f.type_name][0]
            definitions[f.name] = NotRequired[py_type | None] if f.optional else Required[py_type]
        shape: Any = TypedDict(name, definitions)  # type: ignore[misc]
        # The short form forbids unknown fields; a JSON Schema says itself (its default allows).
        extra: Literal["forbid", "allow"] = (
            "forbid" if source is None or source.get("additionalProperties") is False else "allow"
        )
        shape.__pydantic_config__ = ConfigDict(extra=extra)  # type: ignore[attr-defined]
        return cls(fields, TypeAdapter(shape), source)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def validate(self, data: Any) -> dict[str, Any]:
        """Validate ``data`` and return the clean payload.

        Raises:
            pydantic.ValidationError: with one entry per problem.
        """
        clean: dict[str, Any] = self._adapter.validate_python(data)
        if self.source is not None:
            problems = sorted(
                self._validator.iter_errors(clean), key=lambda e: list(map(str, e.absolute_path))
            )
            if problems:
                raise ValidationError.from_exception_data(
                    "Payload",
                    [
                        {
                            "type": PydanticCustomError("json_schema", "{message}", {"message": p.message}),
                            "loc": tuple(p.absolute_path) or ("(payload)",),
                            "input": p.instance,
                        }
                        for p in problems
                    ],
                )
        return clean

    @cached_property
    def _validator(self) -> jsonschema.protocols.Validator:
        assert self.source is not None
        return jsonschema.Draft202012Validator(self.source, format_checker=jsonschema.FormatChecker())

    @cached_property
    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema offered to a model as tool parameters (as written, if it was)."""
        if self.source is not None:
            return {"type": "object", **self.source}
        properties: dict[str, Any] = {}
        for f in self.fields:
            prop = dict(_TYPES[f.type_name][1])
            if f.description:
                prop["description"] = f.description
            properties[f.name] = prop
        return {
            "type": "object",
            "properties": properties,
            "required": [f.name for f in self.fields if not f.optional],
            "additionalProperties": False,
        }

    @cached_property
    def _described(self) -> str:
        props = (self.source or {}).get("properties") or {}
        inner = ", ".join(
            f"{f.name}: {f.type_name}{'?' if f.optional else ''}{_constraints(props.get(f.name))}"
            for f in self.fields
        )
        return "{" + inner + "}"

    def describe(self) -> str:
        """Compact human form, e.g. ``{customer_id: str, question: str}``."""
        return self._described


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field: message``."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(payload)"
        if item["type"] == "extra_forbidden":
            parts.append(f"{loc}: not a field of this schema")
        elif item["type"] == "missing":
            parts.append(f"{loc}: required field missing")
        else:
            parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def _constraints(prop: Any) -> str:
    """A JSON Schema property's constraints in a few words, for messages a model reads."""
    if not isinstance(prop, dict):
        return ""
    said = []
    if "enum" in prop:
        said.append("one of " + "|".join(map(str, prop["enum"])))
    if "const" in prop:
        said.append(f"= {prop['const']!r}")
    if "pattern" in prop:
        said.append(f"matching {prop['pattern']}")
    if "format" in prop:
        said.append(f"format {prop['format']}")
    for key, word in (
        ("minimum", ">="),
        ("maximum", "<="),
        ("minLength", "length >="),
        ("maxLength", "length <="),
    ):
        if key in prop:
            said.append(f"{word} {prop[key]}")
    return f" ({', '.join(said)})" if said else ""

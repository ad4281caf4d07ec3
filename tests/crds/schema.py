"""What the Kubernetes API server does with a ShareFerry CRD and its objects, without a cluster.

For a CustomResourceDefinition, ``CrdSchema.structural_errors`` repeats the checks the API server
makes when the CRD is created (a structural schema, RE2 patterns, defaults that pass their own
schema, CEL rules that compile and name declared fields) and adds a few of ours (printer columns
that point at declared fields, CEL that cel-python can run here).

For an object, ``CrdSchema.validate`` follows the server's order: prune unknown fields (reported,
as ``kubectl apply`` does with its default strict field validation), apply ``default:`` values,
validate against the openAPIV3Schema (with the ``jsonschema`` library, OpenAPI v3.0 being close to
JSON Schema draft 4, patterns in RE2 as the server's Go regexp reads them), then evaluate the
``x-kubernetes-validations`` CEL rules with cel-python, ``self`` bound to the node's value and
``oldSelf`` to the old object's value at the same place when an old object is given.

Errors are human-readable strings, ``<field path>: <message>``; an empty list means valid.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import celpy
import celpy.celtypes as celtypes
import celpy.evaluation
import jsonschema
import jsonschema.validators
import lark
import re2
import yaml

Schema = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# YAML as the API server reads it


class _KubeYamlLoader(yaml.SafeLoader):
    """YAML 1.1 like PyYAML's safe loader, except that an unquoted date stays a string: the
    server turns YAML into JSON, which has no timestamp type."""


_KubeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty documents of a YAML file."""
    documents = yaml.load_all(path.read_text(encoding="utf-8"), Loader=_KubeYamlLoader)
    return [document for document in documents if document is not None]


# ---------------------------------------------------------------------------------------------
# RE2, the regexp dialect of the API server (Go's regexp) and of CEL's matches()

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def re2_error(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (lookarounds, backreferences, ...), or None when it compiles."""
    try:
        _re2(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode() if isinstance(reason, bytes) else str(reason)
    return None


@functools.cache
def _re2(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


# ---------------------------------------------------------------------------------------------
# Paths


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _at(path: str) -> str:
    return path or "<root>"


# ---------------------------------------------------------------------------------------------
# Schema nodes

#: The OpenAPI v3 keywords a CRD schema may use; anything else is a typo or unsupported.
_SCHEMA_KEYWORDS = {
    "type", "format", "title", "description", "default", "enum", "nullable", "example",
    "externalDocs", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties",
    "minProperties", "required", "items", "properties", "additionalProperties", "allOf", "anyOf",
    "oneOf", "not", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-validations",
}  # fmt: skip
_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
#: Formats this validator checks. The server knows more; a schema using another one is reported
#: so that nothing is waved through unchecked.
_CHECKED_FORMATS = {"date-time"}
_RULE_KEYS = {"rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"}
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_RULES = "x-kubernetes-validations"

#: ObjectMeta fields a printer column may show, with the schema the server gives them.
_OBJECT_META: dict[str, Schema] = {
    "name": {"type": "string"},
    "namespace": {"type": "string"},
    "generateName": {"type": "string"},
    "uid": {"type": "string"},
    "resourceVersion": {"type": "string"},
    "generation": {"type": "integer"},
    "creationTimestamp": {"type": "string", "format": "date-time"},
    "deletionTimestamp": {"type": "string", "format": "date-time"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
}

#: What ``kubectl get`` prints for each printer column type, and the schema types that fit it.
_COLUMN_TYPES = {
    "integer": {"integer"},
    "number": {"integer", "number"},
    "boolean": {"boolean"},
    "date": {"string"},
    "string": {"string", "integer", "number", "boolean", "object", "array"},
}

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_BLOCKING = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"


def _child(node: Schema | None, key: str) -> Schema | None:
    """The schema of ``key`` in an object or map node (None: unknown, or preserved unknown)."""
    if node is None:
        return None
    properties = node.get("properties") or {}
    if key in properties:
        return properties[key]  # type: ignore[no-any-return]
    additional = node.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _is_object(node: Schema) -> bool:
    return node.get("type") == "object" or "properties" in node or "additionalProperties" in node


# ---------------------------------------------------------------------------------------------
# CEL


_CEL = celpy.Environment()
_CEL_MACROS = {"has", "all", "exists", "exists_one", "map", "filter"}
#: Functions and methods cel-python evaluates; a rule calling anything else (the Kubernetes CEL
#: libraries: lists, strings, regex find, url, quantity, ip, ...) is reported, never skipped.
CEL_SUPPORTED_FUNCTIONS = frozenset(
    {name for name in celpy.evaluation.base_functions if name[0].isalpha()} | _CEL_MACROS
)


@dataclass(frozen=True)
class _CompiledRule:
    text: str
    tree: lark.Tree[Any]
    program: Any
    transition: bool


@functools.cache
def _compile_rule(text: str) -> _CompiledRule:
    """Parse a rule once (raises ``celpy.CELParseError`` on a syntax error)."""
    tree = _CEL.compile(text)
    transition = any(
        subtree.data == "ident" and str(subtree.children[0]) == "oldSelf" for subtree in tree.iter_subtrees()
    )
    return _CompiledRule(text, tree, _CEL.program(tree), transition)


def _called_functions(tree: lark.Tree[Any]) -> Iterator[str]:
    for subtree in tree.iter_subtrees():
        if subtree.data == "member_dot_arg":
            yield str(subtree.children[1])
        elif subtree.data in ("ident_arg", "dot_ident_arg"):
            yield str(subtree.children[0])


def _regex_literals(tree: lark.Tree[Any]) -> Iterator[str]:
    """The string literals given to matches() (a pattern computed at run time is not seen)."""
    for subtree in tree.iter_subtrees():
        if subtree.data == "member_dot_arg" and str(subtree.children[1]) == "matches":
            arguments = subtree.children[2] if len(subtree.children) > 2 else None
            literals = list(arguments.scan_values(lambda v: isinstance(v, lark.Token))) if arguments else []
            if len(literals) == 1 and literals[0].type == "STRING_LIT":
                yield str(_CEL.program(_CEL.compile(str(literals[0]))).evaluate({}))


def _field_reference_errors(tree: lark.Tree[Any], node: Schema) -> list[str]:
    """``self.x.y`` (and ``oldSelf...``) naming a field the schema does not declare: the server's
    CEL compiler type-checks rules against the schema and refuses the CRD."""
    errors: list[str] = []

    def schema_of(expr: lark.Tree[Any] | lark.Token) -> Schema | None:
        if not isinstance(expr, lark.Tree):
            return None
        if expr.data in ("member", "primary") and len(expr.children) == 1:
            return schema_of(expr.children[0])
        if expr.data == "ident":
            return node if str(expr.children[0]) in ("self", "oldSelf") else None
        if expr.data == "member_index":
            base = schema_of(expr.children[0])
            if base is None:
                return None
            if base.get("type") == "array":
                return base.get("items")
            additional = base.get("additionalProperties")
            return additional if isinstance(additional, dict) else None
        if expr.data == "member_dot":
            base = schema_of(expr.children[0])
            name = str(expr.children[1])
            if base is None:
                return None
            found = _child(base, name)
            if found is None and not base.get(_PRESERVE):
                declared = sorted((base.get("properties") or {}).keys())
                errors.append(f"undefined field {name!r} (declared: {', '.join(declared) or 'none'})")
            return found
        return None

    for subtree in tree.iter_subtrees():
        if subtree.data == "member_dot":
            schema_of(subtree)
    return sorted(set(errors))


def _to_cel(value: Any, node: Schema | None) -> Any:
    """A JSON value as the server hands it to CEL: numbers declared ``number`` are doubles,
    ``date-time`` strings are timestamps, objects and maps are maps."""
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        if node is not None and node.get("type") == "number":
            return celtypes.DoubleType(value)
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        if node is not None and node.get("format") == "date-time" and _RFC3339.fullmatch(value):
            try:
                return celtypes.TimestampType(value)
            except ValueError:
                pass  # refused by the schema's format check already
        return celtypes.StringType(value)
    if isinstance(value, list):
        items = node.get("items") if node is not None else None
        return celtypes.ListType([_to_cel(item, items) for item in value])
    if isinstance(value, dict):
        return celtypes.MapType(
            {celtypes.StringType(key): _to_cel(item, _child(node, key)) for key, item in value.items()}
        )
    raise TypeError(f"cannot hand {type(value).__name__} to CEL")


def _short(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


# ---------------------------------------------------------------------------------------------
# JSON Schema (OpenAPI v3.0 is draft 4 plus nullable and the x-kubernetes-* extensions)


def _re2_pattern(
    validator: Any, pattern: str, instance: Any, schema: Schema
) -> Iterator[jsonschema.ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    problem = re2_error(pattern)
    if problem is not None:
        yield jsonschema.ValidationError(f"pattern {pattern!r} is not valid RE2 ({problem})")
    elif _re2(pattern).search(instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Draft4Re2 = jsonschema.validators.extend(jsonschema.Draft4Validator, {"pattern": _re2_pattern})
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


_JSON_SCHEMA_KEYWORDS = (
    "type", "enum", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "required",
)  # fmt: skip


def _to_json_schema(node: Schema) -> Schema:
    out: Schema = {key: copy.deepcopy(node[key]) for key in _JSON_SCHEMA_KEYWORDS if key in node}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if "properties" in node:
        out["properties"] = {name: _to_json_schema(sub) for name, sub in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _to_json_schema(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        out["items"] = _to_json_schema(node["items"])
    return out


# ---------------------------------------------------------------------------------------------
# The CRD


class CrdSchema:
    """One served version of a CRD: its checks, its defaulting and its validation."""

    def __init__(self, crd: dict[str, Any], version: str | None = None) -> None:
        self.crd = crd
        spec = crd.get("spec") or {}
        self.group: str = spec.get("group", "")
        self.kind: str = (spec.get("names") or {}).get("kind", "")
        versions = spec.get("versions") or []
        chosen = (
            [v for v in versions if v.get("name") == version]
            if version
            else [v for v in versions if v.get("storage")]
        )
        if len(chosen) != 1:
            raise ValueError(
                f"{crd.get('metadata', {}).get('name')}: no single version {version or '(storage)'}"
            )
        self.version_spec: dict[str, Any] = chosen[0]
        self.version: str = self.version_spec["name"]
        self.schema: Schema = (self.version_spec.get("schema") or {}).get("openAPIV3Schema") or {}

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    # -- the CRD itself --------------------------------------------------------------------

    def structural_errors(self) -> list[str]:
        """What is wrong with this version's schema, subresources and printer columns."""
        errors: list[str] = []
        schema = self.schema
        if not schema:
            return ["no openAPIV3Schema"]
        if schema.get("type") != "object":
            errors.append("<root>: the root schema must be type: object")
        properties = schema.get("properties") or {}
        metadata = properties.get("metadata")
        if metadata is not None and metadata != {"type": "object"}:
            errors.append(f"metadata: at the root only {{type: object}} is allowed, not {metadata}")
        if "status" not in (self.version_spec.get("subresources") or {}):
            errors.append("subresources: no status subresource (the operator writes status through it)")
        if "status" not in properties:
            errors.append("status: the schema declares no status")
        errors += self._node_errors(schema, "", correlatable=True)
        errors += self._printer_column_errors()
        return errors

    def _node_errors(self, node: Any, path: str, *, correlatable: bool) -> list[str]:
        at = _at(path)
        if not isinstance(node, dict):
            return [f"{at}: a schema must be a mapping, not {node!r}"]
        errors = [
            f"{at}: {key!r} is not allowed in a CRD schema" for key in node if key not in _SCHEMA_KEYWORDS
        ]
        kind = node.get("type")
        preserve = bool(node.get(_PRESERVE))
        if node.get("x-kubernetes-int-or-string"):
            if kind is not None:
                errors.append(f"{at}: x-kubernetes-int-or-string takes no type")
        elif kind is None:
            if not preserve:
                errors.append(f"{at}: no type (only x-kubernetes-preserve-unknown-fields may leave it out)")
        elif kind not in _TYPES:
            errors.append(f"{at}: unknown type {kind!r}")
        for combinator in ("allOf", "anyOf", "oneOf", "not"):
            if combinator in node:
                errors.append(f"{at}: {combinator} is not checked by this validator; extend it first")
        if node.get("uniqueItems"):
            errors.append(f"{at}: uniqueItems: true is forbidden (use x-kubernetes-list-type: set)")
        if "format" in node and node["format"] not in _CHECKED_FORMATS:
            errors.append(f"{at}: format {node['format']!r} is not checked by this validator")
        if kind == "array" and not isinstance(node.get("items"), dict):
            errors.append(f"{at}: an array needs items")
        properties = node.get("properties")
        additional = node.get("additionalProperties")
        if properties is not None and additional is not None:
            errors.append(f"{at}: properties and additionalProperties exclude each other")
        if additional is not None and not isinstance(additional, dict):
            errors.append(f"{at}: additionalProperties must be a schema, not {additional!r}")
        if (
            kind == "object"
            and properties is None
            and additional is None
            and not preserve
            and path != "metadata"
        ):
            errors.append(
                f"{at}: an object with no properties, no additionalProperties and no {_PRESERVE}: every field in it is pruned"
            )
        for name in node.get("required") or []:
            if name not in (properties or {}):
                errors.append(
                    f"{at}: required field {name!r} is not declared (it would be pruned, so never present)"
                )
        if "pattern" in node:
            problem = re2_error(node["pattern"])
            if problem is not None:
                errors.append(
                    f"{at}: pattern {node['pattern']!r} is not RE2, the server refuses it: {problem}"
                )
            if kind != "string":
                errors.append(f"{at}: a pattern on a {kind}")
        for value in node.get("enum") or []:
            if kind in _TYPES and not _Draft4Re2({"type": kind}).is_valid(value):
                errors.append(f"{at}: enum value {value!r} is not a {kind}")
        for rule in node.get(_RULES) or []:
            errors += [
                f"{at}: {problem}" for problem in self._rule_errors(rule, node, correlatable=correlatable)
            ]
        if "default" in node:
            errors += [
                f"{at}: default {node['default']!r} is invalid: {problem}"
                for problem in self._value_errors(node["default"], node, path, None)
            ]
        for name, sub in (properties or {}).items():
            if path == "" and name == "metadata":
                continue
            errors += self._node_errors(sub, _join(path, name), correlatable=correlatable)
        if isinstance(additional, dict):
            errors += self._node_errors(additional, f"{path}.*", correlatable=correlatable)
        if isinstance(node.get("items"), dict):
            keyed = node.get("x-kubernetes-list-type") == "map"
            errors += self._node_errors(node["items"], f"{path}[*]", correlatable=correlatable and keyed)
        return errors

    def _rule_errors(self, rule: Any, node: Schema, *, correlatable: bool) -> list[str]:
        if not isinstance(rule, dict) or not isinstance(rule.get("rule"), str):
            return [f"a validation needs a rule string: {rule!r}"]
        text = rule["rule"]
        errors = [f"rule {text!r}: unknown key {key!r}" for key in rule if key not in _RULE_KEYS]
        if rule.get("optionalOldSelf"):
            errors.append(
                f"rule {text!r}: optionalOldSelf needs CEL optionals, which cel-python cannot evaluate"
            )
        message = rule.get("message", "")
        if "\n" in message or len(message) > 1024:
            errors.append(f"rule {text!r}: message must be one line of at most 1024 characters")
        try:
            compiled = _compile_rule(text)
        except Exception as exc:
            return [*errors, f"rule {text!r} does not parse: {_short(exc)}"]
        for name in sorted(set(_called_functions(compiled.tree)) - CEL_SUPPORTED_FUNCTIONS):
            errors.append(
                f"rule {text!r} calls {name}(), which cel-python cannot evaluate: rewrite the rule with "
                f"standard CEL ({', '.join(sorted(CEL_SUPPORTED_FUNCTIONS))}) or extend tests/crds/schema.py"
            )
        for pattern in _regex_literals(compiled.tree):
            problem = re2_error(pattern)
            if problem is not None:
                errors.append(f"rule {text!r}: matches() pattern {pattern!r} is not RE2: {problem}")
        errors += [f"rule {text!r}: {problem}" for problem in _field_reference_errors(compiled.tree, node)]
        if compiled.transition and not correlatable:
            errors.append(f"rule {text!r} uses oldSelf inside a list that is not x-kubernetes-list-type: map")
        if "messageExpression" in rule:
            try:
                _compile_rule(rule["messageExpression"])
            except Exception as exc:
                errors.append(f"messageExpression of {text!r} does not parse: {_short(exc)}")
        return errors

    def _printer_column_errors(self) -> list[str]:
        errors = []
        seen: set[str] = set()
        for column in self.version_spec.get("additionalPrinterColumns") or []:
            name, kind, json_path = column.get("name"), column.get("type"), column.get("jsonPath")
            label = f"printer column {name!r}"
            if not name or name in seen:
                errors.append(f"{label}: names must be present and unique")
            seen.add(str(name))
            if kind not in _COLUMN_TYPES:
                errors.append(f"{label}: unknown type {kind!r}")
            if not isinstance(json_path, str):
                errors.append(f"{label}: no jsonPath")
                continue
            target, problem = self.resolve_json_path(json_path)
            if problem is not None:
                errors.append(f"{label}: {json_path} {problem}")
                continue
            assert target is not None
            declared = target.get("type", "string" if target.get("x-kubernetes-int-or-string") else None)
            if kind in _COLUMN_TYPES and declared not in _COLUMN_TYPES[kind]:
                errors.append(f"{label}: a {kind} column shows {json_path}, declared {declared}")
            if kind == "date" and target.get("format") != "date-time":
                errors.append(f"{label}: a date column shows {json_path}, which is not format: date-time")
        return errors

    _JSON_PATH_STEP = re.compile(
        r"""\.(?P<name>[A-Za-z0-9_-]+)"""
        r"""|\[(?P<quote>['"])(?P<key>[^'"]+)(?P=quote)\]"""
        r"""|\[(?:\*|-?\d+(?::-?\d*)?|\?\((?P<filter>[^\]]*)\))\]"""
    )

    def resolve_json_path(self, json_path: str) -> tuple[Schema | None, str | None]:
        """The schema node a printer column's jsonPath reaches, or why it reaches nothing declared."""
        text = json_path.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        node: Schema = self.schema
        position, walked = 0, ""
        while position < len(text):
            step = self._JSON_PATH_STEP.match(text, position)
            if step is None:
                return None, f"is not a JSONPath the server accepts (at {text[position:]!r})"
            position = step.end()
            name = step.group("name") or step.group("key")
            if name is not None:
                found = _OBJECT_META.get(name) if walked == ".metadata" else _child(node, name)
                walked += f".{name}"
                if found is None:
                    if node.get(_PRESERVE):
                        return (
                            None,
                            f"points into fields the schema preserves but does not declare ({walked}): declare them",
                        )
                    return None, f"points at nothing the schema declares ({walked})"
                node = found
                continue
            if node.get("type") != "array" or not isinstance(node.get("items"), dict):
                return None, f"indexes {walked}, which is not an array"
            node = node["items"]
            for field in re.findall(r"@\.([A-Za-z0-9_-]+)", step.group("filter") or ""):
                if _child(node, field) is None:
                    return None, f"filters on {walked}[*].{field}, which the schema does not declare"
            walked += "[*]"
        return node, None

    # -- objects ---------------------------------------------------------------------------

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as the server stores it: unknown fields pruned, defaults applied."""
        return self._prune_and_default(obj, [])

    def _prune_and_default(self, obj: dict[str, Any], unknown: list[str]) -> dict[str, Any]:
        rest = {key: value for key, value in obj.items() if key != "metadata"}
        out = _prune_and_default(rest, self.schema, "", unknown)
        if "metadata" in obj:
            out["metadata"] = copy.deepcopy(obj["metadata"])
        return out  # type: ignore[no-any-return]

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
        """Why the API server would refuse ``obj`` (a create, or an update of ``old``)."""
        errors: list[str] = []
        if obj.get("apiVersion") != self.api_version or obj.get("kind") != self.kind:
            return [
                f"<root>: this is {self.api_version} {self.kind}, not {obj.get('apiVersion')} {obj.get('kind')}"
            ]
        errors += _metadata_errors(obj.get("metadata"))
        unknown: list[str] = []
        current = self._prune_and_default(obj, unknown)
        previous = self._prune_and_default(old, []) if old is not None else None
        return errors + unknown + self._value_errors(current, self.schema, "", previous, defaulted=True)

    def _value_errors(
        self, value: Any, node: Schema, path: str, old: Any, *, defaulted: bool = False
    ) -> list[str]:
        """Schema then CEL errors for ``value`` at ``node`` (pruned and defaulted first unless
        ``defaulted``); ``old`` is the previous value at the same place, or None."""
        unknown: list[str] = []
        if not defaulted:
            value = _prune_and_default(copy.deepcopy(value), node, path, unknown)
        validator = _Draft4Re2(_to_json_schema(node), format_checker=_FORMATS)
        schema_errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
        errors = unknown + list(dict.fromkeys(_schema_message(path, error) for error in schema_errors))
        if any(error.validator in ("type", "enum") for error in schema_errors):
            return [*errors, f"{_at(path)}: {_BLOCKING}"]
        return errors + _cel_errors(value, node, path, old, old is not None)


def _metadata_errors(metadata: Any) -> list[str]:
    if not isinstance(metadata, dict):
        return ["metadata: Required value"]
    name = metadata.get("name")
    if name is None:
        return (
            []
            if metadata.get("generateName")
            else ["metadata.name: Required value (name or generateName is required)"]
        )
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return [
            f"metadata.name: {_quote(name)} is not a lowercase RFC 1123 subdomain of at most 253 characters"
        ]
    return []


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def _quote(value: Any) -> str:
    return (
        json.dumps(value)
        if isinstance(value, (str, int, float, bool)) or value is None
        else type(value).__name__
    )


def _schema_message(path: str, error: jsonschema.ValidationError) -> str:
    """A schema error worded the way ``kubectl`` shows the server's (field path first)."""
    where = path
    for key in error.absolute_path:
        where = _join(where, key)
    field, value, limit, schema = _at(where), error.instance, error.validator_value, error.schema
    kind = error.validator
    if kind == "type":
        actual = _JSON_TYPES.get(type(value), "null")
        expected = " or ".join(limit) if isinstance(limit, list) else limit
        return f'{field}: Invalid value: "{actual}": {field} in body must be of type {expected}: "{actual}"'
    if kind == "enum":
        return f"{field}: Unsupported value: {_quote(value)}: supported values: {', '.join(_quote(v) for v in limit)}"
    if kind == "required":
        missing = [name for name in limit if isinstance(value, dict) and name not in value]
        return "; ".join(f"{_join(where, name)}: Required value" for name in missing) or error.message
    if kind == "pattern" and re2_error(limit) is None:
        return f"{field}: Invalid value: {_quote(value)}: {field} in body should match '{limit}'"
    if kind == "maxLength":
        return f"{field}: Too long: may not be longer than {limit}"
    if kind == "minLength":
        return (
            f"{field}: Invalid value: {_quote(value)}: {field} in body should be at least {limit} chars long"
        )
    if kind == "minimum":
        relation = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
        return f"{field}: Invalid value: {_quote(value)}: {field} in body should be {relation} {limit}"
    if kind == "maximum":
        relation = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
        return f"{field}: Invalid value: {_quote(value)}: {field} in body should be {relation} {limit}"
    if kind == "maxItems":
        return f"{field}: Too many: {len(value)}: must have at most {limit} items"
    if kind == "maxProperties":
        return f"{field}: Too many: {len(value)}: must have at most {limit} properties"
    if kind == "format":
        return f"{field}: Invalid value: {_quote(value)}: {field} in body must be of type {limit}: {_quote(value)}"
    return f"{field}: {error.message}"


def _prune_and_default(value: Any, node: Schema | None, path: str, unknown: list[str]) -> Any:
    """Drop undeclared fields (recording them), then fill in ``default:`` values, recursively:
    a default is applied where its field is missing (or null and not nullable), inside objects
    that are present, and the defaults of the fields inside a default are applied too."""
    if node is None:
        return value
    if isinstance(value, dict) and _is_object(node):
        properties: dict[str, Schema] = node.get("properties") or {}
        additional = node.get("additionalProperties")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in properties or isinstance(additional, dict) or node.get(_PRESERVE):
                out[key] = item
            else:
                unknown.append(f'{_join(path, key)}: unknown field "{_join(path, key)}"')
        for key, sub in properties.items():
            if "default" in sub and (key not in out or (out[key] is None and not sub.get("nullable"))):
                out[key] = copy.deepcopy(sub["default"])
        return {
            key: _prune_and_default(item, _child(node, key), _join(path, key), unknown)
            for key, item in out.items()
        }
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [
            _prune_and_default(item, node["items"], _join(path, i), unknown) for i, item in enumerate(value)
        ]
    return value


def _cel_errors(value: Any, node: Schema | None, path: str, old: Any, has_old: bool) -> list[str]:
    if node is None or value is None:
        return []
    errors: list[str] = []
    for rule in node.get(_RULES) or []:
        errors += _evaluate_rule(rule, value, node, path, old, has_old)
    if isinstance(value, dict) and _is_object(node):
        for key, item in value.items():
            child = _child(node, key)
            child_has_old = has_old and isinstance(old, dict) and key in old
            errors += _cel_errors(
                item, child, _join(path, key), old.get(key) if child_has_old else None, child_has_old
            )
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        # Items of a list are correlated with the old list's only for x-kubernetes-list-type: map,
        # which no ShareFerry schema uses: transition rules are not evaluated inside lists.
        for index, item in enumerate(value):
            errors += _cel_errors(item, node["items"], _join(path, index), None, False)
    return errors


def _evaluate_rule(rule: Schema, value: Any, node: Schema, path: str, old: Any, has_old: bool) -> list[str]:
    text = rule.get("rule", "")
    field_path = str(rule.get("fieldPath", "")).lstrip(".")
    where = _at(_join(path, field_path) if field_path else path)
    try:
        compiled = _compile_rule(text)
    except Exception as exc:
        return [f"{where}: rule {text!r} does not parse: {_short(exc)}"]
    if compiled.transition and not has_old:
        return []  # a transition rule runs on updates only, where there is an old value
    activation = {"self": _to_cel(value, node)}
    if has_old:
        activation["oldSelf"] = _to_cel(old, node)
    outcome, problem = _run(compiled, activation)
    if problem is not None:
        return [f"{where}: could not evaluate rule {text!r}: {problem}"]
    if outcome is True:
        return []
    if outcome is not False:
        return [f"{where}: rule {text!r} gave {outcome!r}, not a bool"]
    message = rule.get("message") or f"failed rule: {text}"
    if "messageExpression" in rule:
        try:
            computed, _ = _run(_compile_rule(rule["messageExpression"]), activation)
        except Exception:
            computed = None  # reported by structural_errors
        if isinstance(computed, celtypes.StringType) and computed:
            message = str(computed)
    return [f"{where}: {message}"]


def _run(compiled: _CompiledRule, activation: dict[str, Any]) -> tuple[Any, str | None]:
    """The expression's value (a Python bool for a CEL bool), or None and why it failed."""
    try:
        result = compiled.program.evaluate(activation)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {_short(exc)}"
    if isinstance(result, celpy.evaluation.CELEvalError):
        return None, f"CELEvalError: {_short(result)}"
    if isinstance(result, celtypes.BoolType):
        return bool(result), None
    return result, None


def load_crds(paths: Sequence[Path]) -> dict[tuple[str, str], CrdSchema]:
    """The storage version of each CRD in ``paths``, by (apiVersion, kind)."""
    crds: dict[tuple[str, str], CrdSchema] = {}
    for path in paths:
        for document in load_documents(path):
            crd = CrdSchema(document)
            crds[(crd.api_version, crd.kind)] = crd
    return crds

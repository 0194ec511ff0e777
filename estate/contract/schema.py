"""ARM deployment schema validation of planned resources.

A planned resource's inputs (azure-native's flattened wire shape) become the ARM request body the provider
sends (`arm_body`): path parameters dropped, renamed inputs (`ArmType.renames`) put under `properties` by their
ARM names, the resource's own name as `name`, `type` and `apiVersion` added, and every key that is not a
property of an object's own schema but is one of its `properties` object moved under `properties`, recursively
(NSG security rules, subnet items, ip configurations, rule collections...). The body is then validated against
the vendored schema definition of its type and api-version, resolving `$ref`s offline through one registry of
the vendored files. Validators are compiled once per definition and cached.

Values that exist only after deployment (mock ids: plain strings, valid wherever a string is) and
placeholders (`[secret]`, `[unknown]`) are left as they are. The placeholders happen to match the schemas'
ARM-expression pattern `^\\[([^\\[].*)?\\]$`, which most properties accept as an alternative; where a schema
has no such alternative, an error whose value is a placeholder is dropped: what is not known cannot be judged.
So is an error whose value is null: a mock output the runtime does not compute (a workspace's customerId, read
into a flow log's workspaceId) arrives as null, and the provider leaves null values out of the request body.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
from jsonschema.exceptions import ValidationError

from estate.contract.types import ARM_TYPES, SCHEMAS, ArmType

BASE = "https://schema.management.azure.com/schemas/"
EXPRESSION = BASE + "common/definitions.json#/definitions/expression"
SUB_RESOURCE_KEYS = frozenset({"id", "name", "type", "etag", "properties"})
PLACEHOLDERS = frozenset({"[secret]", "[unknown]"})  # estate.plan's REDACTED and UNKNOWN


@dataclass(frozen=True)
class Artefact:
    """A known place where the generated schema is stricter than ARM, patched out by name, with the reason."""

    file: str
    pointer: tuple[str, ...]  # path to the dict that is patched
    key: str
    replacement: Any  # the new value of `key`; for "required", the names to remove from it
    why: str
    source: str


ARTEFACTS: tuple[Artefact, ...] = (
    Artefact("2024-03-01/Microsoft.Resources.json", ("subscription_resourceDefinitions", "resourceGroups"),
             "required", ("properties",),
             "the generator marks `properties` required on resource groups; ARM's request body requires only "
             "`location` (FACTS.md, 'Azure's contract')",
             "https://learn.microsoft.com/rest/api/resources/resource-groups/create-or-update"),
    Artefact("2024-06-01/Microsoft.Network.privateDns.json", ("resourceDefinitions", "privateDnsZones"),
             "required", ("properties",),
             "the generator marks `properties` required on private DNS zones; ARM accepts a zone without it "
             "(FACTS.md, 'Azure's contract')",
             "https://learn.microsoft.com/rest/api/dns/privatednszones/private-zones/create-or-update"),
    Artefact("2024-11-01/Microsoft.Compute.json", ("definitions", "HardwareProfile", "properties"),
             "vmSize", {"type": "string"},
             "VirtualMachineSizeTypes is an old enum (its own description: 'currently deprecated'); the REST spec "
             "models it as a string (x-ms-enum modelAsString) and ARM accepts any size the region offers",
             "https://learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update"),
    Artefact("2024-11-01/Microsoft.Compute.Extensions.json", ("definitions", "genericExtension"),
             "required", ("settings",),
             "the hand-written generic extension schema requires `settings`; the REST spec's extension properties "
             "require none, and Microsoft's own AVD templates deploy AADLoginForWindows without settings",
             "https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-sets/create-or-update"),
)


def _load(rel: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / rel).read_text())
    for art in ARTEFACTS:
        if art.file != rel:
            continue
        node: Any = doc
        for part in art.pointer:
            node = node[part]
        if art.key == "required":
            node["required"] = [r for r in node["required"] if r not in art.replacement]
        else:
            node[art.key] = copy.deepcopy(art.replacement)
    return doc


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    """Every vendored schema file, artefacts patched, by path under schemas/."""
    return {p.relative_to(SCHEMAS).as_posix(): _load(p.relative_to(SCHEMAS).as_posix())
            for p in sorted(SCHEMAS.rglob("*.json"))}


@functools.cache
def _registry() -> referencing.Registry[Any]:
    spec = referencing.jsonschema.DRAFT4
    return referencing.Registry().with_resources(
        (BASE + rel, spec.create_resource(doc)) for rel, doc in _documents().items())


def _is_integer(checker: Any, instance: Any) -> bool:
    # the wire format carries every number as a double; the provider sends whole numbers as JSON integers
    return (isinstance(instance, int) and not isinstance(instance, bool)) or (
        isinstance(instance, float) and instance.is_integer())


_Validator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    type_checker=jsonschema.Draft4Validator.TYPE_CHECKER.redefine("integer", _is_integer))


@functools.cache
def validator(arm: ArmType) -> Any:
    """The compiled validator of one resource definition (cached: compiled once per definition)."""
    return _Validator({"$ref": f"{BASE}{arm.file}#/{arm.definition}"}, registry=_registry())


# ---- navigating the schema for the conversion -------------------------------------------------------------

def _resolve(schema: Any, base: str) -> tuple[dict[str, Any], str]:
    """Follow `$ref`s; return the schema and the file URL it lives in."""
    while isinstance(schema, dict) and "$ref" in schema:
        ref: str = schema["$ref"]
        url, _, pointer = ref.partition("#")
        url = url or base
        doc = _documents()[url.removeprefix(BASE)]
        node: Any = doc
        for part in filter(None, pointer.split("/")):
            node = node[part]
        schema, base = node, url
    return (schema if isinstance(schema, dict) else {}), base


def _branches(schema: dict[str, Any], base: str, value: Any) -> list[tuple[dict[str, Any], str]]:
    """The object alternatives of a schema (itself, allOf parts, oneOf/anyOf branches that fit `value`'s
    discriminators), ARM-expression alternatives left out."""
    schema, base = _resolve(schema, base)
    out = [(schema, base)] if "properties" in schema or "additionalProperties" in schema else []
    for part in schema.get("allOf", ()):
        out += _branches(part, base, value)
    for key in ("oneOf", "anyOf"):
        for alt in schema.get(key, ()):
            if isinstance(alt, dict) and alt.get("$ref") == EXPRESSION:
                continue
            resolved = _branches(alt, base, value)
            if all(_fits(s, b, value) for s, b in resolved):
                out += resolved
    return out


def _fits(schema: dict[str, Any], base: str, value: Any) -> bool:
    """False when `value` contradicts a single-valued enum (a discriminator) of `schema`."""
    if not isinstance(value, dict):
        return True
    for key, sub in schema.get("properties", {}).items():
        sub, _ = _resolve(sub, base)
        enum = sub.get("enum")
        if enum is not None and len(enum) == 1 and key in value and value[key] != enum[0]:
            return False
    return True


def _subschema(branches: list[tuple[dict[str, Any], str]], key: str) -> tuple[Any, str] | None:
    for schema, base in branches:
        if key in schema.get("properties", {}):
            return schema["properties"][key], base
    for schema, base in branches:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return extra, base
    return None


def _items(schema: Any, base: str) -> tuple[Any, str] | None:
    schema, base = _resolve(schema, base)
    if isinstance(schema.get("items"), dict):
        return schema["items"], base
    for key in ("oneOf", "anyOf"):
        for alt in schema.get(key, ()):
            found = _items(alt, base)
            if found:
                return found
    return None


def _shape(value: Any, schema: Any, base: str) -> Any:
    """`value` (flattened) in the schema's nested shape: keys that belong to the `properties` object moved
    under it, recursively."""
    if isinstance(value, list):
        items = _items(schema, base)
        return [_shape(v, *items) if items else v for v in value]
    if not isinstance(value, dict):
        return value
    branches = _branches(schema, base, value)
    if not branches:
        return value
    own = {k for s, _ in branches for k in s.get("properties", {})}
    inner_schema = _subschema(branches, "properties")
    inner = _branches(*inner_schema, value) if inner_schema else []
    inner_keys = {k for s, _ in inner for k in s.get("properties", {})}
    # a sub-resource (only id/name/type/etag besides `properties`) keeps everything else in `properties`: the
    # schema of the VMSS extension's properties, for one, is an anyOf of hand-written per-extension schemas
    # that do not list every property the REST body has (provisionAfterExtensions, ...)
    sub_resource = bool(inner) and own <= SUB_RESOURCE_KEYS
    top: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for key, val in value.items():
        if key not in own and (key in inner_keys or sub_resource):
            moved[key] = val
        else:
            top[key] = val
    if moved:
        existing = top.get("properties")
        top["properties"] = {**moved, **existing} if isinstance(existing, dict) else moved
    out: dict[str, Any] = {}
    for key, val in top.items():
        sub = _subschema(branches, key)
        out[key] = _shape(val, *sub) if sub else val
    return out


def arm_body(arm: ArmType, inputs: dict[str, Any]) -> dict[str, Any]:
    """The ARM request body (as a deployment template resource) for azure-native `inputs`."""
    body = {k: v for k, v in inputs.items() if k not in arm.path_params and k != arm.name_param}
    renamed = {arm_key: body.pop(key) for key, arm_key in arm.renames if key in body}
    if renamed:
        existing = body.get("properties")
        body["properties"] = {**renamed, **existing} if isinstance(existing, dict) else renamed
    if arm.name_param in inputs:
        body["name"] = inputs[arm.name_param]
    body["type"] = arm.resource_type
    body["apiVersion"] = arm.api_version
    shaped: dict[str, Any] = _shape(body, _resource_schema(arm), BASE + arm.file)
    return shaped


# ---- errors -----------------------------------------------------------------------------------------------

def _is_expression(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("$ref") == EXPRESSION


def leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong: through oneOf/anyOf, the errors of the alternative that came
    closest (ARM-expression alternatives never count)."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        yield error
        return
    alternatives = error.validator_value if isinstance(error.validator_value, list) else []
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        index = sub.relative_schema_path[0]
        if isinstance(index, int) and not (index < len(alternatives) and _is_expression(alternatives[index])):
            by_branch.setdefault(index, []).append(sub)
    if not by_branch:
        yield error
        return

    def closeness(errors: list[ValidationError]) -> tuple[int, int]:
        return (min(len(e.absolute_path) for e in errors), -len(errors))

    best = max(by_branch.values(), key=closeness)
    for sub in best:
        yield from leaf_errors(sub)


def json_path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def message(error: ValidationError) -> str:
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {error.validator_value!r}"
    text = str(error.message)
    return text if len(text) < 300 else text[:297] + "..."


def _resource_schema(arm: ArmType) -> dict[str, Any]:
    node: Any = _documents()[arm.file]
    for part in arm.definition.split("/"):
        node = node[part]
    schema, _ = _resolve(node, BASE + arm.file)
    return schema


def schema_errors(arm: ArmType, inputs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(JSON path, message, schema definition) of each schema error in `inputs`' ARM body.

    The vendored schemas set no `additionalProperties: false`, so jsonschema would accept any unknown key;
    a key left at the top of the body that is neither a property of the resource nor of its `properties`
    object is reported here: ARM would ignore it, and the setting it carries would be lost."""
    body = arm_body(arm, inputs)
    out: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    known_keys = set(_resource_schema(arm).get("properties", {}))
    for name in body:
        if name not in known_keys:
            out.append((f"$.{name}", f"{name!r} is neither a property of {arm.resource_type} nor of its "
                        "`properties` object", arm.source))
    for top in validator(arm).iter_errors(body):
        for err in leaf_errors(top):
            if err.instance is None or (isinstance(err.instance, str) and err.instance in PLACEHOLDERS):
                continue
            key = (json_path(err), message(err))
            if key in seen:
                continue
            seen.add(key)
            out.append((*key, _definition(arm, err)))
    return out


def _definition(arm: ArmType, error: ValidationError) -> str:
    """The schema file and named definition the failing keyword sits in (else the resource definition)."""
    return _named().get(id(error.schema), arm.source)


@functools.cache
def _named() -> dict[int, str]:
    """id() of every schema node inside a named definition -> "file#/definitions/Name" (built on first use)."""
    out: dict[int, str] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            out.setdefault(id(node), name)
            for value in node.values():
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, name)

    for rel, doc in _documents().items():
        for key in ("definitions", "resourceDefinitions", "subscription_resourceDefinitions"):
            for name, sub in doc.get(key, {}).items():
                walk(sub, f"{rel}#/{key}/{name}")
    return out


def known(type_token: str) -> ArmType | None:
    return ARM_TYPES.get(type_token)

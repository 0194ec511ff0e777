"""JSON Schema for framework.yaml and council.yml, generated from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from estate.atomic import write_atomic
from estate.models import Council, Framework, Hosts

SCHEMAS: dict[str, type[BaseModel]] = {
    "framework.schema.json": Framework,
    "council.schema.json": Council,
    "hosts.schema.json": Hosts,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path, check: bool = False) -> list[str]:
    """Write (or with check, compare) every schema; returns the names that were out of date."""
    stale = []
    for name, model in SCHEMAS.items():
        path = folder / name
        text = render(model)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
            if not check:
                write_atomic(path, text)
    return stale

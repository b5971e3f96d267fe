"""The README's spec-key table, generated from the schema so the docs cannot drift (a test compares them).

Run ``python -m tao_siamese_oi.config.reference`` to print it.
"""

import dataclasses
import json

from tao_siamese_oi.config.schema import ExperimentConfig

BEGIN, END = "<!-- spec-reference:begin -->", "<!-- spec-reference:end -->"


def _rows(schema, prefix: str = ""):
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(f.type):
            yield from _rows(f.type, key + ".")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        meta = f.metadata
        rule = ", ".join(map(str, meta["choices"])) if meta.get("choices") else ""
        if meta.get("min") is not None or meta.get("max") is not None:
            rule = f"{meta.get('min', '')} .. {meta.get('max') if meta.get('max') is not None else ''}".strip()
        yield key, json.dumps(default), rule, meta.get("help", "")


def spec_reference_markdown() -> str:
    lines = ["| key | default | allowed | notes |", "|---|---|---|---|"]
    lines += [f"| `{k}` | `{d}` | {r} | {h} |" for k, d, r, h in _rows(ExperimentConfig)]
    return "\n".join([BEGIN, *lines, END])


if __name__ == "__main__":
    print(spec_reference_markdown())

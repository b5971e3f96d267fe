"""A job's walls: every path its spec names stays inside its own folder, its parents' folders or its org's data.

The job service checks a job's final spec (the client's specs bound by the plugin's hook, merged over the
plugin's defaults for the action) when the job is created or resumed, and the job's wrapper checks the written
spec again just before the task starts (``walls.json`` beside it says what to check), so a symlink swapped in
meanwhile or a spec edited on disk cannot lead a task out.

- **Interpolations**: only plain references to other keys (``${results_dir}/train``) are allowed in a client's
  specs, and a path key's references are resolved here as OmegaConf resolves them; a resolver
  (``${oc.env:HOME}``, ``${oc.decode:...}``) could read the service's environment or build any path, and is
  refused. OmegaConf is not used: the launcher is generic, and a resolver-free reference is all a job's spec may
  hold.
- **Paths**: the plugin's ``path_keys`` (fnmatch patterns of dotted keys); relative values are taken from the
  job's folder (where jobs run); symlinks are resolved. Values starting with one of the plugin's
  ``named_models`` prefixes (``builtin:``) are names, not paths.
- **Outputs**: the plugin's ``output_keys`` must lie inside the job's own folder; the service drops the client's
  values for them before binding, so the plugin's defaults (under the job's results folder) apply.
"""

import fnmatch
import json
import re
from pathlib import Path

from tao_launcher.redaction import REFERENCE

WALLS_FILE = "walls.json"
# A job's walls, as a JSON list of folders, in its task's environment: what a plugin must confine the files its
# data names (a CSV's image paths) to, when it reads them (docs/plugin_protocol.md).
ROOTS_ENV = "TAO_JOB_ROOTS"
SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_DEPTH = 16


class WallError(ValueError):
    """A spec key that would take a job outside its walls; the message names the key."""


def matches(dotted: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(dotted, pattern) for pattern in patterns)


def without_keys(specs: dict, patterns, prefix: str = "") -> dict:
    """``specs`` without the keys matching ``patterns`` (the client may not choose where a job writes)."""
    kept = {}
    for key, value in specs.items():
        dotted = f"{prefix}{key}"
        if matches(dotted, patterns):
            continue
        kept[key] = without_keys(value, patterns, dotted + ".") if isinstance(value, dict) else value
    return kept


def check_references(specs, prefix: str = "") -> None:
    """Refuse any interpolation in a client's specs other than a plain ``${key}`` reference, wherever it is (a
    resolver in any key would be run by the task with the job's environment)."""
    for key, value in specs.items() if isinstance(specs, dict) else ():
        dotted = f"{prefix}{key}"
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                check_references(item, dotted + ".")
            elif isinstance(item, str):
                _plain_references(item, dotted)


def _plain_references(value: str, key: str) -> None:
    for token in REFERENCE.findall(value):
        if not SIMPLE_KEY.fullmatch(token.strip()):
            raise WallError(
                f"specs key '{key}': '${{{token}}}' is not allowed in a job's specs (only ${{key}} references to "
                "other keys; no resolvers such as oc.env)"
            )


def resolve_value(spec: dict, key: str, value):
    """``value`` (of ``key``) with every ``${key}`` reference replaced by the referenced value (as text inside a
    longer string); a resolver, an unknown reference or a cycle is a WallError naming the key."""

    def lookup(ref: str, key: str, chain: tuple):
        if ref in chain or len(chain) > MAX_DEPTH:
            raise WallError(f"specs key '{key}': the reference ${{{ref}}} refers back to itself")
        node = spec
        for part in ref.split("."):
            if not isinstance(node, dict) or part not in node:
                raise WallError(f"specs key '{key}': ${{{ref}}} names no key of the spec")
            node = node[part]
        return value_of(node, key, (*chain, ref))

    def value_of(value, key: str, chain: tuple = ()):
        if isinstance(value, dict):
            return {k: value_of(v, f"{key}.{k}", chain) for k, v in value.items()}
        if isinstance(value, list):
            return [value_of(v, key, chain) for v in value]
        if not isinstance(value, str) or "${" not in value:
            return value
        _plain_references(value, key)
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return lookup(whole.group(1).strip(), key, chain)
        text = REFERENCE.sub(lambda m: str(lookup(m.group(1).strip(), key, chain)), value)
        if "${" in text:
            raise WallError(f"specs key '{key}': '{value}' does not resolve to a plain value")
        return text

    return value_of(value, key)


def check(spec: dict, path_keys, output_keys, named_models, roots, job_dir) -> None:
    """Raise WallError for the first path key of ``spec`` outside ``roots`` (an output key: outside
    ``job_dir``)."""
    job_dir = Path(job_dir).resolve()
    roots = [Path(r).resolve() for r in roots]
    for dotted, given in _paths(spec, path_keys):
        value = resolve_value(spec, dotted, given)
        if not isinstance(value, str) or not value:
            continue
        if any(value.startswith(prefix) for prefix in named_models):
            continue
        where = (job_dir / value).resolve()  # an absolute value replaces job_dir; symlinks are followed
        if matches(dotted, output_keys):
            if not _under(where, [job_dir]):
                raise WallError(f"specs key '{dotted}': a job writes only inside its own folder, not {value}")
        elif not _under(where, roots):
            raise WallError(
                f"specs key '{dotted}': {value} is outside this job's folder, its parent jobs' folders and the "
                "org's data; name a dataset or a parent job instead"
            )


def write(job_dir: Path, spec_file: Path, plugin, roots) -> None:
    """``walls.json``: what the job's wrapper checks again before the task starts."""
    walls = {"spec": str(spec_file), "path_keys": list(plugin.spec.path_keys),
             "output_keys": list(plugin.spec.output_keys), "named_models": list(plugin.spec.named_models),
             "roots": [str(r) for r in roots], "job_dir": str(job_dir)}  # fmt: skip
    (job_dir / WALLS_FILE).write_text(json.dumps(walls, indent=1))


def check_written(walls_file: Path) -> None:
    """The wrapper's check: the spec on disk, now, against the walls the service wrote."""
    import yaml

    walls = json.loads(walls_file.read_text())
    spec = yaml.safe_load(Path(walls["spec"]).read_text()) or {}
    check(spec, walls["path_keys"], walls["output_keys"], walls["named_models"], walls["roots"], walls["job_dir"])


def _paths(spec, patterns, prefix: str = ""):
    for key, value in spec.items() if isinstance(spec, dict) else ():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _paths(value, patterns, dotted + ".")
        elif isinstance(value, str) and value and matches(dotted, patterns):
            yield dotted, value
        elif isinstance(value, list) and matches(dotted, patterns):
            yield from ((dotted, v) for v in value if isinstance(v, str) and v)


def _under(path: Path, roots) -> bool:
    return any(path.is_relative_to(root) for root in roots)

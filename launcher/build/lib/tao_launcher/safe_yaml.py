"""YAML from files users hand us: safe tags only, and no alias bombs.

``yaml.safe_load`` builds no objects but still expands aliases: a 470-byte file with nested aliases ("billion
laughs") becomes a structure whose copy (OmegaConf merges copy) takes minutes and gigabytes. The node graph is
composed first and its expanded size counted (each node once, memoised, so the count itself is linear); a file
that would expand past :data:`MAX_VALUES` is refused before anything is built.
"""

import re

import yaml

MAX_VALUES = 100_000  # a full spec has about 200


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e-3 as a float (YAML 1.1 wants 1.0e-3), as OmegaConf does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)(?:\.[\d_]*)?[eE][-+]?\d+$"),
    list("-+0123456789"),
)


class YamlRefused(ValueError):
    """The text is not YAML we accept; the message says why (line and column where known)."""


def load_yaml_text(text: str):
    """The data in ``text`` (plain dicts, lists, scalars); raise YamlRefused for invalid or explosive YAML."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise YamlRefused(_describe(exc)) from None
    if node is None:
        return None
    size = _expanded_size(node, {})
    if size > MAX_VALUES:
        raise YamlRefused(
            f"it expands to more than {MAX_VALUES:,} values through aliases (*name); write the values out"
        )
    try:
        return _Loader(text).get_single_data()
    except yaml.YAMLError as exc:
        raise YamlRefused(_describe(exc)) from None


def load_yaml_file(path) -> object:
    """``load_yaml_text`` of a file that must be UTF-8 text."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlRefused(f"it is not UTF-8 text (byte {exc.start} is not); is it a YAML spec?") from None
    return load_yaml_text(text)


def _expanded_size(node, memo: dict) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once while its size is being taken
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_VALUES + 1)  # capped: the count stays small whatever the nesting
    return memo[key]


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}invalid YAML ({getattr(exc, 'problem', None) or exc})"

"""Read model files without running code in them.

Every checkpoint goes through PyTorch's restricted unpickler (``weights_only=True``): tensors, containers and
numbers only. What else a real checkpoint holds is allowed here explicitly, and nothing more:

- ours and TAO's (Lightning ``ModelCheckpoint`` files): plain dicts, lists, tuples and tensors; nothing to add;
- a Lightning module that saved an OmegaConf spec as hyper-parameters (older TAO releases, other tools) pickles
  ``DictConfig``/``ListConfig`` with their nodes and metadata. We never use that spec, so those types are not
  rebuilt as OmegaConf objects (whose methods could resolve ``${oc.env:...}`` and more): each becomes an inert
  :class:`PickledRecord` holding its name and state. No code of the original class runs.

A file that needs any other global is refused with :class:`CheckpointError` naming the file and the type.
"""

import collections
import pickle
import re
import typing
from typing import Any

from tao_siamese_oi.errors import CheckpointError


class PickledRecord:
    """Stands in for an allowed but unused pickled object: its type name and the state it was saved with."""

    type_name = "object"

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.type_name} (not rebuilt)>"


def _record_type(full_name: str) -> type:
    return type(full_name.rsplit(".", 1)[1], (PickledRecord,), {"type_name": full_name})


# OmegaConf types that a spec saved as Lightning hyper-parameters pickles (found by saving one with
# ModelCheckpoint: tests/unit/test_safe_load.py makes such a file).
_OMEGACONF_TYPES = [
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.Metadata",
    "omegaconf.base.ContainerMetadata",
    *(
        f"omegaconf.nodes.{node}"
        for node in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode", "PathNode")
    ),
]

# Names OmegaConf metadata refers to as values (ref_type=typing.Any, object_type=dict, resolver_cache=
# defaultdict(dict)). The builtins are the plain types; typing.Any is only ever a marker here.
_VALUE_GLOBALS = [
    (dict, "builtins.dict"),
    (list, "builtins.list"),
    (int, "builtins.int"),
    (float, "builtins.float"),
    (str, "builtins.str"),
    (bool, "builtins.bool"),
    (collections.defaultdict, "collections.defaultdict"),
    (typing.Any, "typing.Any"),
]

ALLOWED_GLOBALS: list[Any] = [(_record_type(name), name) for name in _OMEGACONF_TYPES] + _VALUE_GLOBALS

_GLOBAL_NAME = re.compile(r"GLOBAL (\S+)")


def safe_torch_load(source, name: str, map_location="cpu", mmap: bool = False):
    """``torch.load`` through the restricted unpickler with our allow-list; ``name`` is used in errors."""
    import torch

    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(source, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{name} holds a Python object of type {_refused_type(exc)} that no model file needs; refused without "
            "running it (the file may be malicious). Use a checkpoint written by train or TAO"
        ) from None


def _refused_type(exc: Exception) -> str:
    text = str(exc)
    match = _GLOBAL_NAME.search(text)
    if match:
        return match.group(1).rstrip(".")
    match = re.search(r"(?:function|got) (<[^>]+>|\S+)", text)
    return match.group(1) if match else "unknown"

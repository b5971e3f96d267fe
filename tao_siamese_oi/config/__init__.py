"""One config schema for every task: dataclasses hold the defaults, specs and overrides only change them.

The loader (OmegaConf, YAML) is imported on first use, so the plugin declaration can read the schema's path
fields without it (``tao --help`` stays light).
"""

import importlib

__all__ = ["action_schema", "default_spec", "load_config", "require", "save_resolved_config"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("tao_siamese_oi.config.loader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

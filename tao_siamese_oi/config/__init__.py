"""One config schema for every task: dataclasses hold the defaults, specs and overrides only change them."""

from tao_siamese_oi.config.loader import action_schema, default_spec, load_config, require, save_resolved_config

__all__ = ["action_schema", "default_spec", "load_config", "require", "save_resolved_config"]

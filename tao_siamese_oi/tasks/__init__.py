"""One module per task, each exposing ``run(cfg) -> dict``. The CLI only loads the config and calls it."""

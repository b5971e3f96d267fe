"""Where the DeepPCB data is: ``$DEEPPCB_ROOT``, else ``../shared/data/deeppcb-dev`` beside this repository (the
layout CI has). Any folder holding DeepPCB's ``PCBData/`` works: the two-design development subset or the whole
public dataset (https://github.com/tangsanli5201/DeepPCB, MIT licence). Benchmarks and tests read it from here."""

import os
from pathlib import Path

ENV = "DEEPPCB_ROOT"
BESIDE_REPOSITORY = Path(__file__).resolve().parents[2] / "shared" / "data" / "deeppcb-dev"


def deeppcb_root() -> Path:
    return Path(os.environ.get(ENV) or BESIDE_REPOSITORY)


def missing_reason() -> str | None:
    """Why DeepPCB cannot be used here (a skip reason naming the variable), or None."""
    root = deeppcb_root()
    if (root / "PCBData").is_dir():
        return None
    return f"needs DeepPCB's PCBData/ in {root}: set {ENV} to a copy of the DeepPCB data (see README, Benchmarks)"

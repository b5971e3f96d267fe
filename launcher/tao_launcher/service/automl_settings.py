"""A client's ``automl_settings``, as TAO's API takes them, checked against what the plugin declares (protocol 1.6
``automl``) and turned into the search's plan: the algorithm's Optuna sampler and pruner, the budget and the
parameters with their ranges. Every refusal is one line naming the setting (a 400 in TAO's error shape).

The TAO Client sends ``--automl-settings key=value`` values as text ("true", "3", "[a, b]"), and
``--automl-settings @file.json`` values as JSON; both are read here.
"""

import difflib
import json

from tao_launcher.service.errors import RequestError

# TAO's algorithm names served, and how: (sampler, pruner). Hyperband-like ones train every trial up to
# automl_max_epochs and report the metric each epoch, so the pruner stops the weak ones early.
ALGORITHMS = {
    "bayesian": ("tpe", None),
    "b": ("tpe", None),
    "hyperband": ("random", "hyperband"),
    "h": ("random", "hyperband"),
    "asha": ("random", "successive_halving"),
    "bohb": ("tpe", "hyperband"),
}
REFUSED = {  # TAO's other names: their search is not one Optuna does the same way
    "pbt": "population-based training changes a trial's parameters while it runs",
    "dehb": "differential evolution is not an Optuna sampler",
    "hyperband_es": "use hyperband (early stopping is its pruner here)",
    "hes": "use hyperband (early stopping is its pruner here)",
    "bfbo": "use bayesian",
}
DEFAULTS = {
    "automl_algorithm": "bayesian",
    "automl_max_recommendations": 10,
    "automl_max_concurrent": 1,
    "automl_delete_intermediate_ckpt": True,
    "automl_reduction_factor": 3,
    "epoch_multiplier": 1,
    "automl_seed": 0,
}
ALIASES = {"automl_R": "automl_max_epochs", "automl_r": "automl_max_epochs", "automl_nu": "automl_reduction_factor"}
KNOWN = (*DEFAULTS, "automl_enabled", "automl_hyperparameters", "automl_range_override", "automl_max_epochs",
         "override_automl_disabled_params", *ALIASES)  # fmt: skip
MAX_TRIALS = 200
MAX_CONCURRENT = 16


def enabled(settings) -> bool:
    return isinstance(settings, dict) and _bool("automl_enabled", settings.get("automl_enabled", False))


def defaults(plugin) -> dict:
    """What get-automl-defaults shows: settings a client may pass back as they are (``--automl-settings
    @file.json``): the algorithm, the budget, and every parameter the plugin lets a search change, with its range."""
    declared = plugin.spec.automl
    return {
        "automl_enabled": True,
        **DEFAULTS,
        "automl_hyperparameters": [p["parameter"] for p in declared["parameters"]],
        "automl_range_override": [dict(p) for p in declared["parameters"]],
        "metric": declared["metric"],
        "direction": declared.get("direction", "maximize"),
    }


def plan(settings: dict, plugin, action: str, epochs: int) -> dict:
    """The search a request asks for (``epochs``: what the job's spec trains for, the hyperband default)."""
    declared = plugin.spec.automl
    if not declared:
        raise RequestError(400, f"{plugin.spec.name} declares no AutoML parameters (protocol 1.6 automl)")
    if action != "train":
        raise RequestError(400, f"automl_settings: AutoML searches train jobs, not {action}; leave them out")
    given = {ALIASES.get(k, k): v for k, v in settings.items() if k not in ("metric", "direction")}
    for key in given:
        if key not in KNOWN:
            raise RequestError(400, f"automl_settings: '{key}' is not a setting{_nearest(key, KNOWN)}")
    merged = {**DEFAULTS, **given}
    algorithm = str(merged["automl_algorithm"]).lower()
    if algorithm in REFUSED:
        raise RequestError(400, f"automl_algorithm '{algorithm}' is not served ({REFUSED[algorithm]}); choose one "
                           f"of {', '.join(ALGORITHMS)}")  # fmt: skip
    if algorithm not in ALGORITHMS:
        raise RequestError(400, f"automl_algorithm '{algorithm}' is not known; choose one of {', '.join(ALGORITHMS)}")
    sampler, pruner = ALGORITHMS[algorithm]
    multiplier = _int("epoch_multiplier", merged["epoch_multiplier"], 1, 1000)
    max_epochs = _int("automl_max_epochs", merged.get("automl_max_epochs", epochs), multiplier, 10000)
    return {
        "algorithm": algorithm,
        "sampler": sampler,
        "pruner": pruner,
        "max_recommendations": _int("automl_max_recommendations", merged["automl_max_recommendations"], 1, MAX_TRIALS),
        "max_concurrent": _int("automl_max_concurrent", merged["automl_max_concurrent"], 1, MAX_CONCURRENT),
        "delete_intermediate_ckpt": _bool("automl_delete_intermediate_ckpt", merged["automl_delete_intermediate_ckpt"]),
        "max_epochs": max_epochs,
        "min_epochs": multiplier,
        "reduction_factor": _int("automl_reduction_factor", merged["automl_reduction_factor"], 2, 100),
        "seed": _int("automl_seed", merged["automl_seed"], 0, 2**31 - 1),
        "metric": declared["metric"],
        "direction": declared.get("direction", "maximize"),
        "epochs_key": declared["epochs_key"],
        "checkpoint_files": list(declared.get("checkpoint_files", [])),
        "parameters": _parameters(declared["parameters"], merged),
    }


def _parameters(declared: list, settings: dict) -> list[dict]:
    """The declared parameters a search changes (automl_hyperparameters; default: all), each narrowed by
    automl_range_override where given."""
    by_name = {p["parameter"]: dict(p) for p in declared}
    names = _names(settings.get("automl_hyperparameters"), by_name)
    overrides = _list("automl_range_override", settings.get("automl_range_override") or [])
    for item in overrides:
        if not isinstance(item, dict) or "parameter" not in item:
            raise RequestError(400, "automl_range_override: each item needs 'parameter' (and valid_min, valid_max "
                               "or valid_options)")  # fmt: skip
        name = str(item["parameter"])
        if name not in by_name:
            raise RequestError(400, f"automl_range_override: '{name}' is not a parameter AutoML may change"
                               f"{_nearest(name, by_name)}")  # fmt: skip
        by_name[name] = _narrowed(by_name[name], item)
    return [by_name[name] for name in names]


def _names(given, by_name: dict) -> list[str]:
    if given in (None, "", []):
        return list(by_name)
    names = _list("automl_hyperparameters", given)
    for name in names:
        if name not in by_name:
            raise RequestError(400, f"automl_hyperparameters: '{name}' is not a parameter AutoML may change"
                               f"{_nearest(str(name), by_name)}")  # fmt: skip
    return list(dict.fromkeys(names))


def _narrowed(param: dict, item: dict) -> dict:
    """A declared parameter with the client's narrower range: numbers inside the declared bounds, options among
    the declared ones (a numeric parameter given options is searched over those values)."""
    name, kind = param["parameter"], param["value_type"]
    narrowed = dict(param)
    if item.get("valid_options") not in (None, []):
        options = _list(f"automl_range_override {name}.valid_options", item["valid_options"])
        for option in options:
            if kind == "categorical" and option not in param["valid_options"]:
                raise RequestError(400, f"automl_range_override: {name} option {option!r} is not one of "
                                   f"{param['valid_options']}")  # fmt: skip
            if kind in ("float", "int") and not _within(param, option):
                raise RequestError(400, f"automl_range_override: {name} option {option!r} is outside "
                                   f"[{param['valid_min']}, {param['valid_max']}]")  # fmt: skip
        narrowed["valid_options"] = options
        return narrowed
    if kind not in ("float", "int"):
        raise RequestError(400, f"automl_range_override: {name} is {kind}; give valid_options")
    low = _number(f"{name}.valid_min", item.get("valid_min", param["valid_min"]))
    high = _number(f"{name}.valid_max", item.get("valid_max", param["valid_max"]))
    if not (param["valid_min"] <= low < high <= param["valid_max"]):
        raise RequestError(400, f"automl_range_override: {name} needs valid_min < valid_max inside the declared "
                           f"[{param['valid_min']}, {param['valid_max']}] (got [{low}, {high}])")  # fmt: skip
    narrowed.update(valid_min=int(low) if kind == "int" else low, valid_max=int(high) if kind == "int" else high)
    narrowed.pop("valid_options", None)
    return narrowed


def _within(param: dict, value) -> bool:
    return isinstance(value, (int, float)) and param["valid_min"] <= value <= param["valid_max"]


def _list(name: str, value) -> list:
    """A list, or text holding one: JSON (``["a", "b"]``) or the client's key=value form (``[a, b]`` or ``a,b``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [part.strip().strip("'\"") for part in value.strip().strip("[]").split(",") if part.strip()]
    if not isinstance(value, list):
        raise RequestError(400, f"automl_settings: {name} must be a list")
    return value


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "no", ""):
        return False
    raise RequestError(400, f"automl_settings: {name} must be true or false, not {value!r}")


def _int(name: str, value, low: int, high: int) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise RequestError(400, f"automl_settings: {name} must be a whole number from {low} to {high}, not {value!r}")
    return number


def _number(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RequestError(400, f"automl_range_override: {name} must be a number, not {value!r}") from None


def _nearest(name: str, known) -> str:
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else f"; choose among {', '.join(known)}"

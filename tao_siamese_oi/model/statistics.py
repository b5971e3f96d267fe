"""How sure a measured rate is: exact binomial (Clopper-Pearson) intervals, and the smallest set that can show a
target rate at all. All rates are percentages.

A false-alarm rate measured on 30 good parts says little about 1 %: even with no false alarm, the 95 % interval
reaches 11.6 %. These numbers are reported beside every rate so nobody tunes a line on noise.
"""

import math

from scipy.stats import beta

CONFIDENCE = 0.95


def clopper_pearson(count: int, total: int, confidence: float = CONFIDENCE) -> list[float] | None:
    """[low, high] % containing the true rate with ``confidence`` (exact binomial; None when total is 0)."""
    if total <= 0:
        return None
    tail = (1 - confidence) / 2
    low = 0.0 if count == 0 else float(beta.ppf(tail, count, total - count + 1))
    high = 1.0 if count == total else float(beta.ppf(1 - tail, count + 1, total - count))
    return [100 * low, 100 * high]


def rate(count: int, total: int) -> dict:
    """A rate with its count and interval: {count, of, percent, ci95_percent}."""
    return {
        "count": int(count),
        "of": int(total),
        "percent": 100.0 * count / total if total else None,
        "ci95_percent": clopper_pearson(int(count), int(total)),
    }


def pairs_to_show(target_percent: float, confidence: float = CONFIDENCE) -> int:
    """The fewest pairs on which a rate of 0 has its interval's upper end below ``target_percent``: fewer cannot
    show that a rate is under the target, whatever the model does."""
    target = target_percent / 100.0
    if target <= 0:
        return math.inf  # type: ignore[return-value]  # no finite set shows a rate of exactly 0
    if target >= 1:
        return 1
    return math.floor(math.log((1 - confidence) / 2) / math.log(1 - target)) + 1


def too_few(num: int, target_percent: float, rate_name: str, class_name: str, where: str) -> str | None:
    """One line when ``num`` pairs of ``class_name`` in ``where`` cannot show a ``rate_name`` of
    ``target_percent`` %, else None."""
    need = pairs_to_show(target_percent)
    if num >= need:
        return None
    return (
        f"{where} has {num} {class_name} pairs: too few to show an {rate_name} of {target_percent:g} % (at least "
        f"{need} are needed even with none wrong); treat its {rate_name} as a rough estimate"
    )

"""Progress bars for the long loops outside Lightning (validation of images, dataset conversion)."""

from tqdm.auto import tqdm

# Shorter work finishes before a bar would tell anyone anything; it only clutters the log.
MIN_ITEMS = 200


def progress(iterable, total: int, desc: str, unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar on stderr when there are at least MIN_ITEMS items; as it is otherwise."""
    if total < MIN_ITEMS:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, mininterval=0.5, leave=False, dynamic_ncols=True)

"""Progress bars for the long loops outside Lightning (validation of images, dataset conversion).

Bars are drawn on a terminal only: in a log file (a redirected stderr, a container's log, a scheduler's) a bar
is a line of carriage returns stuck at its first value.
"""

import sys

from tqdm.auto import tqdm

# Shorter work finishes before a bar would tell anyone anything; it only clutters the log.
MIN_ITEMS = 200


def progress(iterable, total: int, desc: str, unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar on stderr when there are at least MIN_ITEMS items; as it is otherwise."""
    if total < MIN_ITEMS or not bars_wanted():
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, mininterval=0.5, leave=False, dynamic_ncols=True)


def bars_wanted() -> bool:
    """Whether progress bars help: stderr is a terminal."""
    return sys.stderr.isatty()

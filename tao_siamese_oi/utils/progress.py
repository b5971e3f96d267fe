"""Progress bars for the long loops outside Lightning (validation of images, dataset conversion).

Bars are drawn on a terminal only: in a log file (a redirected stderr, a container's log, a scheduler's, the job
service's job.log) a bar is a line of carriage returns stuck at its first value, so there a line is logged every
30 s instead.
"""

import logging
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("tao_siamese_oi")

# Shorter work finishes before a bar would tell anyone anything; it only clutters the log.
MIN_ITEMS = 200


def progress(iterable, total: int, desc: str, unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar on stderr when there are at least MIN_ITEMS items; in a log (no
    terminal), a line every LOG_EVERY_S seconds while the work lasts; as it is otherwise."""
    if total < MIN_ITEMS:
        return iterable
    if not bars_wanted():
        return _logged(iterable, total, desc, unit)
    return tqdm(iterable, total=total, desc=desc, unit=unit, mininterval=0.5, leave=False, dynamic_ncols=True)


LOG_EVERY_S = 30.0


def _logged(iterable, total: int, desc: str, unit: str):
    """The items of ``iterable``, with a progress line in the log now and then: a long step is never silent."""
    started = last = time.monotonic()
    for done, item in enumerate(iterable, start=1):
        yield item
        now = time.monotonic()
        if now - last >= LOG_EVERY_S and done < total:
            last = now
            rate = done / (now - started)
            log.info("%s: %d of %d %ss (%.0f %%), about %.0f s left", desc, done, total, unit, 100 * done / total,
                     (total - done) / rate)  # fmt: skip


def bars_wanted() -> bool:
    """Whether progress bars help: stderr is a terminal."""
    return sys.stderr.isatty()

"""The allocator tuning keeps freed batch-sized buffers mapped, and steps aside for a user's own choice."""

import subprocess
import sys

import pytest

PROBE = """
import os, sys, numpy as np
from tao_siamese_oi.utils.memory import keep_freed_memory
applied = keep_freed_memory()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
block = np.ones(40 << 20, dtype=np.uint8)  # a 40 MB batch, touched
del block
print(applied, (rss() - before) >> 20)
"""


def probe(env_extra: dict) -> tuple[bool, int]:
    env = {"PATH": "/usr/bin:/bin", **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    applied, kept_mb = out.split()
    return applied == "True", int(kept_mb)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_freed_buffers_stay_mapped_only_when_applied():
    applied, kept_mb = probe({})
    assert applied
    assert kept_mb >= 35  # the freed 40 MB is kept for the next batch
    applied, kept_mb = probe({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not applied  # the user's own tuning wins
    assert kept_mb < 5  # and glibc's default hands the block back

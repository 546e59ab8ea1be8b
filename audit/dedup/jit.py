"""The numba decorator of the dedup's compiled kernels (:mod:`audit.dedup.kernel`, the LSH buckets).

Compiled code releases the GIL and is cached on disk where numba can write its cache (next to
the source file, else ``NUMBA_CACHE_DIR`` or the user's cache directory), so only the first run
after an install compiles (a few seconds). Where no cache can be written (a read-only install
without a writable home) the functions are compiled in memory on first use: a slower first
call, the same results, no error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from numba import njit
from numba.core.errors import NumbaWarning

# A cache directory that exists but cannot be written: numba compiles in memory and warns.
warnings.filterwarnings("ignore", category=NumbaWarning, message=".*[Cc]annot cache.*")


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled by numba (``nogil``), cached on disk when possible."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)

"""Keep Numba's on-disk cache usable from a read-only install.

Numba caches compiled kernels (``@njit(cache=True)``) in ``__pycache__`` beside
the source, or, when that is not writable, in the user's cache directory.  If
neither is writable (a read-only site-packages and a read-only home, as in
some containers), decorating a cached function would fail at import time.
:func:`ensure_writable_cache` then points Numba at a per-user directory under
the system temporary directory.  It runs once, before any kernel is defined,
and never overrides a ``NUMBA_CACHE_DIR`` the user has set.
"""
import os
import tempfile

import numba
from numba.misc.appdirs import AppDirs

__all__ = ["ensure_writable_cache"]


def _is_writable_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def ensure_writable_cache(package_dir=os.path.dirname(__file__),
                          is_writable=_is_writable_dir):
    """Return the cache directory Numba will use, setting a fallback if needed."""
    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    in_tree = os.path.join(package_dir, "__pycache__")
    user_wide = AppDirs(appname="numba", appauthor=False).user_cache_dir
    for candidate in (in_tree, user_wide):
        if is_writable(candidate):
            return candidate
    user = getattr(os, "getuid", lambda: "user")()
    fallback = os.path.join(tempfile.gettempdir(), f"mtlinear-numba-cache-{user}")
    numba.config.CACHE_DIR = fallback
    return fallback

"""Where mtlinear's compiled kernels are cached, and when that cache is stale.

Every solver kernel is ``@njit(cache=True)``.  Numba keys each cached function
on its own source file only, but mtlinear's kernels inline code from other
modules (``numba.extending.overload`` of generic stubs whose implementations
live elsewhere).  Editing such a callee would leave Numba loading the caller's
stale machine code.  The kernels are therefore cached in a directory named
after a hash of *all* the package's sources (and of the Numba, NumPy and
Python versions): any change to the package starts from an empty cache.

A custom cache locator, placed first in Numba's list, claims only functions
defined in this package's directory, so other packages' Numba caches in the
same process behave as usual.  Its subfolders are named after the module's
folder inside the package, not after the absolute path Numba uses: the same
sources give the same cache wherever they are installed.

**Kernels compiled at installation.**  Building the package (``pip install
.``) runs :mod:`mtlinear._precompile`, which compiles the kernels of the
common fits and ships them in the package as ``_kernels/mtlinear-<hash>``
with the compiling machine's target (:func:`compile_target`).  When the
cache directory for this hash holds no kernel yet and the target is this
machine's, the first import copies them in (:func:`seed_from_shipped`), so
the first fit loads them instead of compiling for 10-20 s.  Elsewhere (a
build on another processor, a changed source) they are ignored, and the
kernels compile on first use as without them.

A kernel's index lists every signature it was compiled for, pickled, and a
penalty record defined outside the package (a user's compiled penalty) is
pickled as a reference to its module: in a process that cannot import that
module, Numba's loading of the index raised ``ModuleNotFoundError`` and
every fit failed.  The package's kernels read such an index as empty (a cache
miss: they compile and write a new one).  The directory is, in order of preference:

1. ``$NUMBA_CACHE_DIR/mtlinear-<hash>`` when the user has set
   ``NUMBA_CACHE_DIR``;
2. ``<Numba's user cache directory>/mtlinear-<hash>`` (``~/.cache/numba`` on
   Linux);
3. ``<temporary directory>/mtlinear-cache-<uid>/mtlinear-<hash>``.

Cache files are pickles: whoever can write the directory can run code in the
next process that loads it.  A directory is used only if it is a real
directory (not a symlink), owned by the current user and not writable by
group or others; the directories mtlinear creates are owner-only.  When no
candidate qualifies, caching is switched off for mtlinear's kernels only (they
compile in every process) and one ``UserWarning`` says so.

:func:`announce_compilation` tells the user, once per process, that the first
fit of an installation compiles the solvers, since that pause (seconds) would
otherwise look like a hang.
"""
import getpass
import hashlib
import json
import os
import pickle
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import numba
import numpy
from numba.core import caching
from numba.core.dispatcher import Dispatcher
from numba.misc.appdirs import AppDirs

__all__ = ["announce_compilation", "cache_dir", "compile_target",
           "ensure_writable_cache", "seed_from_shipped", "source_hash"]

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SHIPPED_DIR = "_kernels"       # below the package: kernels compiled at build
TARGET_FILE = "target.json"    # in it: the target they were compiled for
SEEDED_MARK = "seeded"         # in a cache directory: shipped kernels copied
QUIET_ENV = "MTLINEAR_QUIET_COMPILE"
_HASH_LENGTH = 16

# Numba renamed ``_CacheImpl`` to ``CacheImpl``; the locator list lives there.
_CacheImpl = getattr(caching, "CacheImpl", None) or caching._CacheImpl


class _State:
    """What :func:`ensure_writable_cache` decided for this process."""

    configured = False
    cache_dir = None


# set by the first announce_compilation(): later calls cost one global lookup
_announced = False


# ---------------------------------------------------------------------------
# The key: a hash of the package's sources


def source_hash(package_dir=PACKAGE_DIR):
    """First 16 hex digits of a SHA-256 over the package's Python sources.

    The digest covers every ``*.py`` file below `package_dir` (relative path
    and content, in sorted order) and the Numba, NumPy and Python versions,
    so the cache directory changes whenever any kernel or anything a kernel
    inlines could have changed.

    Parameters
    ----------
    package_dir : str or path-like, optional
        The package to hash; the installed ``mtlinear`` by default.

    Returns
    -------
    str
    """
    root = Path(package_dir)
    digest = hashlib.sha256()
    digest.update(f"numba {numba.__version__}\0numpy {numpy.__version__}\0"
                  f"python {sys.version}\0".encode())
    for relative in sorted(path.relative_to(root).as_posix()
                           for path in root.rglob("*.py")):
        content = (root / relative).read_bytes()
        # lengths delimit the fields, so no two trees hash alike by shifting
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:_HASH_LENGTH]


# ---------------------------------------------------------------------------
# Choosing a safe directory


def _owned_by_current_user(st):
    """Whether the ``os.lstat`` result `st` belongs to this process's user."""
    getuid = getattr(os, "getuid", None)
    return getuid is None or st.st_uid == getuid()


def _is_private_dir(path):
    """Whether `path` is a real directory only its owner, the user, can write.

    Where there are no POSIX user ids (Windows) the mode bits do not describe
    access, and the per-user locations are protected by their ACLs instead.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):  # also rejects a symlink to a directory
        return False
    if not hasattr(os, "getuid"):
        return True
    writable_by_others = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return _owned_by_current_user(st) and not writable_by_others


def _is_writable_dir(path):
    """Whether a file can be created in `path` (read-only mounts, quotas)."""
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def _make_private_dir(path):
    """Create `path` owner-only if it does not exist; an existing one is kept.

    An existing entry is left for :func:`_is_private_dir` to judge.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def _user_tag():
    """A per-user name component for the shared temporary directory."""
    if hasattr(os, "getuid"):
        return str(os.getuid())
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "user"


def _candidates(digest):
    """Directory chains to try, best first.

    Each chain lists directories to create owner-only and check, outermost
    first; its last entry is the cache directory.  The temporary directory is
    shared by all users, so there the per-user parent is checked too: a parent
    someone else controls would let them swap the cache directory.
    """
    name = f"mtlinear-{digest}"
    chains = []
    if numba.config.CACHE_DIR:
        user_set = os.path.abspath(numba.config.CACHE_DIR)
        chains.append((os.path.join(user_set, name),))
    user_cache = AppDirs(appname="numba", appauthor=False).user_cache_dir
    chains.append((os.path.join(user_cache, name),))
    shared = os.path.join(tempfile.gettempdir(), f"mtlinear-cache-{_user_tag()}")
    chains.append((shared, os.path.join(shared, name)))
    return chains


def _prepare(chain, is_private, is_writable):
    """Create and check one chain; True when its last directory is usable."""
    try:
        os.makedirs(os.path.dirname(chain[0]), exist_ok=True)
        for directory in chain:
            _make_private_dir(directory)
            if not is_private(directory):
                return False
    except OSError:
        return False
    return is_writable(chain[-1])


def _find_cache_dir(digest, is_private=_is_private_dir,
                    is_writable=_is_writable_dir):
    """The first usable cache directory for `digest`, or None.

    Parameters
    ----------
    digest : str
        :func:`source_hash` of the package.
    is_private, is_writable : callable, optional
        Predicates on a directory path (injectable so tests can simulate
        other users' directories and read-only systems).

    Returns
    -------
    str or None
    """
    for chain in _candidates(digest):
        if _prepare(chain, is_private, is_writable):
            return chain[-1]
    return None


# ---------------------------------------------------------------------------
# Telling Numba


def _real_dir(path):
    return os.path.normcase(os.path.realpath(path))


def _inside(path, real_dir):
    """Whether the file `path` lies below the resolved directory `real_dir`."""
    return _real_dir(path).startswith(real_dir + os.sep)


class _PackageCacheLocator(caching._CacheLocator):
    """Cache locator for the functions defined in mtlinear's own modules.

    It keeps Numba's per-source-directory subfolders below the hash-named
    root, so modules never share an index.  The source stamp is the package
    hash: the root already changes with any source change.
    """

    root = None          # the cache directory; None leaves every function alone
    package_dir = None   # resolved package directory
    stamp = None         # the package's source hash

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(
            self.root, module_subfolder(py_file, self.package_dir))

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self.stamp

    def get_disambiguator(self):
        return str(self._lineno)

    def ensure_cache_path(self):
        """Create the subfolder owner-only, recreating a root that was cleared.

        The base class then checks that a file can be written there.
        """
        _make_private_dir(self.root)
        if not _is_private_dir(self.root):
            raise PermissionError(f"not a private directory: {self.root!r}")
        _make_private_dir(self._cache_path)
        super().ensure_cache_path()

    @classmethod
    def from_function(cls, py_func, py_file):
        """A locator for the package's functions, None for any other.

        Unlike Numba's locators it does not create the folder here: the root
        was checked at import, a missing folder only means nothing is cached
        yet, and Numba creates it (:meth:`ensure_cache_path`) before saving.
        Declining a package function would hand it to Numba's own locators,
        whose caches go stale when an inlined callee changes.
        """
        if cls.root is None or not _inside(py_file, cls.package_dir):
            return None
        return cls(py_func, py_file)


def module_subfolder(py_file, package_dir):
    """The cache subfolder of a module of the package: its folder's path
    inside the package (``mtlinear``, ``mtlinear.penalties``), the same
    wherever the package is installed (`package_dir`: resolved)."""
    folder = os.path.relpath(os.path.dirname(_real_dir(py_file)), package_dir)
    parts = [] if folder == os.curdir else folder.split(os.sep)
    return ".".join(["mtlinear", *parts])


class _TolerantIndexFile(caching.IndexDataCacheFile):
    """Numba's index and data files, reading an index that cannot be
    unpickled (a type of a module this process cannot import, or a file cut
    short) as an empty one instead of raising."""

    def _load_index(self):
        try:
            return super()._load_index()
        except (ImportError, AttributeError, EOFError, pickle.UnpicklingError):
            return {}


def _install_locator(root, digest, package_dir):
    """Route the package's cached kernels to `root`, with tolerant indexes."""
    _PackageCacheLocator.root = root
    _PackageCacheLocator.package_dir = _real_dir(package_dir)
    _PackageCacheLocator.stamp = digest
    locators = _CacheImpl._locator_classes
    if _PackageCacheLocator not in locators:
        locators.insert(0, _PackageCacheLocator)
    original = Dispatcher.enable_caching
    if getattr(original, "_mtlinear_tolerant", False):
        return

    def enable_caching(self):
        original(self)
        cache_file = getattr(getattr(self, "_cache", None), "_cache_file", None)
        if (type(cache_file) is caching.IndexDataCacheFile
                and isinstance(self._cache._impl.locator, _PackageCacheLocator)):
            cache_file.__class__ = _TolerantIndexFile

    enable_caching._mtlinear_tolerant = True
    enable_caching.__doc__ = original.__doc__
    Dispatcher.enable_caching = enable_caching


def _disable_package_caching(package_dir):
    """Give the package's kernels no disk cache; other functions keep theirs.

    A locator cannot do this: Numba raises at decoration when no locator
    accepts a function, and raises while saving when the one it got points at
    an unusable path.  Skipping ``enable_caching`` leaves the dispatcher with
    the no-op cache it was created with.
    """
    original = Dispatcher.enable_caching
    if getattr(original, "_mtlinear_package_dir", None) is not None:
        return
    real_package_dir = _real_dir(package_dir)

    def enable_caching(self):
        if not _inside(self.py_func.__code__.co_filename, real_package_dir):
            original(self)

    enable_caching._mtlinear_package_dir = real_package_dir
    enable_caching.__doc__ = original.__doc__
    Dispatcher.enable_caching = enable_caching


def ensure_writable_cache(package_dir=PACKAGE_DIR):
    """Choose the cache directory for the package's kernels and tell Numba.

    Runs once per process, before any kernel is defined (from the package's
    ``__init__``); later calls return the first decision.  When no directory
    qualifies, the kernels are compiled without a disk cache and a single
    ``UserWarning`` names ``NUMBA_CACHE_DIR`` as the remedy.

    Parameters
    ----------
    package_dir : str, optional
        The package whose modules are cached; the installed ``mtlinear``.

    Returns
    -------
    str or None
        The cache directory, or None when caching is disabled.
    """
    if _State.configured:
        return _State.cache_dir
    digest = source_hash(package_dir)
    root = _find_cache_dir(digest)
    if root is None:
        _disable_package_caching(package_dir)
        warnings.warn(
            "mtlinear: no private, writable directory for the compile cache "
            "was found, so the compile cache is disabled and the solvers are "
            "compiled again in every process; set NUMBA_CACHE_DIR to a "
            "writable directory to enable it.", UserWarning, stacklevel=3)
    else:
        _install_locator(root, digest, package_dir)
        seed_from_shipped(root, os.path.join(package_dir, SHIPPED_DIR))
    _State.cache_dir = root
    _State.configured = True
    return root


def compile_target():
    """The processor target Numba compiles for here (triple, CPU name,
    features): cached machine code is only valid for the same."""
    from numba.core.registry import cpu_target
    return list(cpu_target.target_context.codegen().magic_tuple())


def seed_from_shipped(root, shipped):
    """Copy the kernels compiled at installation into the cache `root`.

    `shipped` holds ``mtlinear-<hash>`` folders and the target they were
    compiled for.  Copies once per cache directory (a mark file records
    it), only when the folder named like `root` exists, its target is this
    machine's and `root` holds no kernel yet (its own indexes, possibly
    extended since, are never replaced).

    Returns
    -------
    bool
        Whether kernels were copied.
    """
    source = os.path.join(shipped, os.path.basename(root))
    mark = os.path.join(root, SEEDED_MARK)
    if not os.path.isdir(source) or os.path.exists(mark) or _holds_kernels(root):
        return False
    try:
        with open(os.path.join(shipped, TARGET_FILE)) as file:
            target = json.load(file)
    except (OSError, ValueError):
        return False
    if target != compile_target():
        return False
    try:
        for subfolder in sorted(os.listdir(source)):
            if not os.path.isdir(os.path.join(source, subfolder)):
                continue
            _make_private_dir(os.path.join(root, subfolder))
            for name in os.listdir(os.path.join(source, subfolder)):
                destination = os.path.join(root, subfolder, name)
                if not os.path.exists(destination):
                    # whole files only, also when processes seed at once
                    partial = f"{destination}.{os.getpid()}.part"
                    shutil.copyfile(os.path.join(source, subfolder, name),
                                    partial)
                    os.replace(partial, destination)
        Path(mark).touch()
    except OSError:
        return False  # a cache miss: the kernels compile on first use
    return True


def cache_dir():
    """The directory holding mtlinear's compiled kernels, or None if disabled.

    Returns
    -------
    str or None
    """
    return _State.cache_dir


# ---------------------------------------------------------------------------
# The first-compile notice


def _holds_kernels(directory):
    """Whether any module subfolder of `directory` has a cache index."""
    return next(Path(directory).glob("*/*.nbi"), None) is not None


def _quiet():
    return os.environ.get(QUIET_ENV, "").strip() not in ("", "0")


def _notice():
    if _State.cache_dir is None:
        return ("mtlinear: compiling the solvers (about 10-20 s); the compile "
                "cache is disabled, so this happens in every new process "
                "(set NUMBA_CACHE_DIR to a writable directory).")
    return ("mtlinear: compiling the solvers for this installation "
            "(once, about 10-20 s); later fits start at once.")


def announce_compilation():
    """Say once per process that the solvers are about to be compiled.

    Called at the start of every fit.  The first call prints one line to
    stderr when the cache for this installation holds no kernel yet (or
    caching is disabled), because the first fit then pauses for seconds with
    no other output; every later call returns at the cost of a flag test.
    Setting the environment variable ``MTLINEAR_QUIET_COMPILE=1`` silences
    it.
    """
    global _announced
    if _announced:
        return
    _announced = True
    if _quiet():
        return
    if _State.cache_dir is not None and _holds_kernels(_State.cache_dir):
        return
    print(_notice(), file=sys.stderr, flush=True)

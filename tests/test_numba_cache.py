"""mtlinear's kernels are cached under a hash of the package's sources.

The end-to-end checks run in subprocesses: the cache is chosen once, when
``mtlinear`` is imported, so each scenario needs a fresh interpreter with its
own environment.  The cold run compiles the l21 penalty's prox (through the
overloaded stubs, as the solvers do); the other runs reuse that cache or
compile nothing.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest

import mtlinear._numba_cache as numba_cache

NOTICE = "mtlinear: compiling the solvers"

# Reports, as JSON on stdout, what the cache did for two tiny fits (or, with
# argv[2] == "alpha_max", for the cheapest public call running a kernel; with
# "prox", for a penalty's prox: a compiled entry calling the penalty's
# overloaded stubs, the route every solver takes, at a fraction of a solver's
# compile time) and for a cached kernel defined outside the package (argv[1]
# is its folder).
FIT_SCRIPT = textwrap.dedent("""
    import json
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import mtlinear
    import numpy as np
    from numba.core.dispatcher import Dispatcher
    from numba.core.event import install_recorder
    from mtlinear._numba_cache import announce_compilation, cache_dir

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    with install_recorder("numba:compile") as recorder:
        for _ in range(2):
            announce_compilation()  # what every fit does
            if sys.argv[2] == "alpha_max":
                mtlinear.alpha_max(X, Y, penalty="l21")
            elif sys.argv[2] == "prox":
                from mtlinear.penalties import make_penalty
                make_penalty("l21", 0.1).prox(X, 1.0)
            else:
                mtlinear.MultiTaskRegressor(penalty="l21", alpha=0.1).fit(X, Y)

    def ours(dispatcher):
        return dispatcher.py_func.__module__.startswith("mtlinear")

    compiled = [event.data["dispatcher"] for _, event in recorder.buffer
                if event.is_start]
    kernels = {id(value): value for name, module in list(sys.modules.items())
               if name.startswith("mtlinear")
               for value in vars(module).values()
               if isinstance(value, Dispatcher) and ours(value)}
    sys.path.insert(0, sys.argv[1])
    import outside_kernels
    assert outside_kernels.twice(21) == 42
    print(json.dumps({
        "cache_dir": cache_dir(),
        "n_compiled": sum(map(ours, compiled)),
        "kernel_cache_paths": [k.stats.cache_path for k in kernels.values()],
        "outside_cache_path": outside_kernels.twice.stats.cache_path,
        "warnings": [(w.category.__name__, str(w.message)) for w in caught],
    }))
""")

OUTSIDE_KERNELS = textwrap.dedent("""
    from numba import njit

    @njit(cache=True)
    def twice(x):
        return 2 * x
""")


def _clean_env(**overrides):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("NUMBA_", "MTLINEAR_"))}
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def _run(script, env, *args, cwd=None):
    """Run `script` in a fresh interpreter; (stdout JSON or None, stderr)."""
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=600,
                          cwd=cwd)
    assert done.returncode == 0, done.stderr
    stdout = done.stdout.strip()
    return (json.loads(stdout) if stdout else None), done.stderr


def _run_fits(env, workdir, call="fit", cwd=None):
    outside = workdir / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "outside_kernels.py").write_text(OUTSIDE_KERNELS)
    return _run(FIT_SCRIPT, env, outside, call, cwd=cwd)


def _package_numba_files():
    """Numba cache files in the package tree, with their modification times."""
    package = Path(numba_cache.PACKAGE_DIR)
    return {str(path): path.stat().st_mtime_ns
            for pattern in ("*.nbi", "*.nbc") for path in package.rglob(pattern)}


def _index_files(directory):
    return {str(path): path.stat().st_mtime_ns
            for path in Path(directory).rglob("*.nbi")}


@pytest.fixture(scope="module")
def cold_and_warm(tmp_path_factory):
    """Two processes fitting with the same, initially empty, cache directory."""
    workdir = tmp_path_factory.mktemp("cache")
    env = _clean_env(NUMBA_CACHE_DIR=workdir / "numba")
    package_files = _package_numba_files()
    cold = _run_fits(env, workdir, "prox")
    indexes = _index_files(workdir / "numba")
    warm = _run_fits(env, workdir, "prox")
    return dict(workdir=workdir, cold=cold, warm=warm, indexes=indexes,
                indexes_after_warm=_index_files(workdir / "numba"),
                package_files=package_files,
                package_files_after=_package_numba_files())


def test_kernels_are_cached_under_the_source_hash(cold_and_warm):
    (report, _), workdir = cold_and_warm["cold"], cold_and_warm["workdir"]
    root = workdir / "numba" / f"mtlinear-{numba_cache.source_hash()}"
    assert report["cache_dir"] == str(root)
    assert list(root.glob("*/*.nbi")), "no kernel index under the hash dir"
    assert (root.stat().st_mode & 0o777) == 0o700
    assert report["kernel_cache_paths"]
    for path in report["kernel_cache_paths"]:
        assert Path(path).parent == root  # one subfolder per source folder
    # the package's own __pycache__ gets nothing
    assert cold_and_warm["package_files_after"] == cold_and_warm["package_files"]


def test_other_packages_keep_numba_default_locations(cold_and_warm):
    (report, _), workdir = cold_and_warm["cold"], cold_and_warm["workdir"]
    outside = Path(report["outside_cache_path"])
    assert outside.parent == workdir / "numba"
    assert not outside.name.startswith("mtlinear-")


def test_second_process_loads_every_kernel_from_the_cache(cold_and_warm):
    assert cold_and_warm["cold"][0]["n_compiled"] > 0
    assert cold_and_warm["warm"][0]["n_compiled"] == 0
    assert cold_and_warm["indexes_after_warm"] == cold_and_warm["indexes"]


def test_notice_printed_once_while_the_cache_is_empty(cold_and_warm):
    _, stderr = cold_and_warm["cold"]
    assert stderr.count(NOTICE) == 1, stderr
    assert "once" in stderr


def test_no_notice_once_the_cache_holds_kernels(cold_and_warm):
    _, stderr = cold_and_warm["warm"]
    assert NOTICE not in stderr, stderr


def test_no_warning_when_a_cache_is_usable(cold_and_warm):
    messages = [message for _, message in cold_and_warm["cold"][0]["warnings"]]
    assert not [message for message in messages if "cache" in message]


FOREIGN_RECORD = textwrap.dedent("""
    from collections import namedtuple

    ForeignRecord = namedtuple("ForeignRecord", ["lam"])
""")


def test_an_index_naming_a_module_this_process_lacks_is_a_cache_miss(
        cold_and_warm, tmp_path, monkeypatch):
    """A kernel compiled for a penalty record of a user's module (a compiled
    penalty of their own) has that record's class in its index, pickled by
    reference.  A process that cannot import the module failed to load the
    index (``ModuleNotFoundError``) and so every fit failed; now it compiles
    the kernel again."""
    cache = shutil.copytree(cold_and_warm["workdir"] / "numba", tmp_path / "numba")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "foreign_record.py").write_text(FOREIGN_RECORD)
    monkeypatch.syspath_prepend(str(tmp_path / "foreign"))
    from foreign_record import ForeignRecord
    indexes = list(Path(cache).rglob("*.nbi"))
    assert indexes
    for index in indexes:  # as the user's process would have written them
        with open(index, "rb") as f:
            version = pickle.load(f)
            stamp, overloads = pickle.loads(f.read())
        overloads[("signature", ForeignRecord(0.1))] = "foreign.1.nbc"
        with open(index, "wb") as f:
            pickle.dump(version, f, protocol=-1)
            f.write(pickle.dumps((stamp, overloads), protocol=-1))
    report, _ = _run_fits(_clean_env(NUMBA_CACHE_DIR=cache), tmp_path, "prox")
    assert report["n_compiled"] > 0  # compiled afresh, not loaded, no error


def test_notice_silenced_by_environment(tmp_path):
    script = ("from mtlinear._numba_cache import announce_compilation\n"
              "announce_compilation()\n")
    _, stderr = _run(script, _clean_env(NUMBA_CACHE_DIR=tmp_path))
    assert stderr.count(NOTICE) == 1
    _, stderr = _run(script, _clean_env(NUMBA_CACHE_DIR=tmp_path,
                                        MTLINEAR_QUIET_COMPILE=1))
    assert NOTICE not in stderr


def _copy_package(destination):
    return shutil.copytree(numba_cache.PACKAGE_DIR, destination,
                           ignore=shutil.ignore_patterns("__pycache__"))


def test_source_hash_follows_contents_and_paths(tmp_path):
    package = Path(_copy_package(tmp_path / "pkg"))
    before = numba_cache.source_hash(package)
    assert len(before) == 16 and int(before, 16) >= 0
    assert numba_cache.source_hash(package) == before

    (package / "notes.txt").write_text("not Python")
    assert numba_cache.source_hash(package) == before

    module = sorted(package.glob("*.py"))[-1]
    module.write_text(module.read_text() + "\n# edited\n")
    edited = numba_cache.source_hash(package)
    assert edited != before

    module.rename(module.with_name("renamed.py"))
    assert numba_cache.source_hash(package) not in (before, edited)

    nested = package / "sub"
    nested.mkdir()
    (nested / "kernels.py").write_text("x = 1\n")
    renamed = numba_cache.source_hash(package)
    (nested / "kernels.py").write_text("x = 2\n")
    assert numba_cache.source_hash(package) != renamed


@pytest.fixture
def isolated_locations(tmp_path, monkeypatch):
    """No NUMBA_CACHE_DIR, an unusable user cache, a private temp dir."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    monkeypatch.setenv("HOME", str(blocker / "home"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    fallback = temp / f"mtlinear-cache-{numba_cache._user_tag()}"
    return fallback


def test_user_cache_dir_is_used_first(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    found = numba_cache._find_cache_dir("0123")
    assert found == str(tmp_path / "mtlinear-0123")
    assert (os.stat(found).st_mode & 0o777) == 0o700


def test_fallback_is_created_owner_only(isolated_locations):
    found = numba_cache._find_cache_dir("0123")
    assert found == str(isolated_locations / "mtlinear-0123")
    for directory in (isolated_locations, found):
        assert (os.lstat(directory).st_mode & 0o777) == 0o700


def test_existing_owner_only_fallback_is_used(isolated_locations):
    isolated_locations.mkdir(mode=0o700)
    assert numba_cache._find_cache_dir("0123") == str(
        isolated_locations / "mtlinear-0123")


def _world_writable(path):
    path.mkdir()
    path.chmod(0o777)


def _regular_file(path):
    path.write_text("")


def _symlink_to_private_dir(path):
    target = path.parent / "elsewhere"
    target.mkdir(mode=0o700)
    path.symlink_to(target, target_is_directory=True)


@pytest.mark.parametrize("plant", [_world_writable, _regular_file,
                                   _symlink_to_private_dir])
def test_unsafe_fallback_is_not_used(isolated_locations, plant):
    plant(isolated_locations)
    assert numba_cache._find_cache_dir("0123") is None
    assert not (isolated_locations.parent / "elsewhere" / "mtlinear-0123").exists()
    if isolated_locations.is_dir() and not isolated_locations.is_symlink():
        assert list(isolated_locations.iterdir()) == []


def test_unsafe_cache_dir_inside_private_parent_is_not_used(isolated_locations):
    isolated_locations.mkdir(mode=0o700)
    _world_writable(isolated_locations / "mtlinear-0123")
    assert numba_cache._find_cache_dir("0123") is None


def test_fallback_of_another_user_is_not_used(isolated_locations, monkeypatch):
    isolated_locations.mkdir(mode=0o700)
    monkeypatch.setattr(numba_cache, "_owned_by_current_user", lambda st: False)
    assert numba_cache._find_cache_dir("0123") is None


def test_nothing_writable_is_reported_as_none(isolated_locations):
    assert numba_cache._find_cache_dir(
        "0123", is_writable=lambda path: False) is None


def test_import_and_kernels_without_any_usable_cache(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    planted = temp / f"mtlinear-cache-{numba_cache._user_tag()}"
    _world_writable(planted)
    env = _clean_env(NUMBA_CACHE_DIR=blocker / "numba",
                     XDG_CACHE_HOME=blocker / "cache", HOME=blocker / "home",
                     TMPDIR=temp)
    package_files = _package_numba_files()
    report, stderr = _run_fits(env, tmp_path, call="alpha_max")

    assert report["cache_dir"] is None
    user_warnings = [message for category, message in report["warnings"]
                     if category == "UserWarning"]
    assert len(user_warnings) == 1 and "NUMBA_CACHE_DIR" in user_warnings[0]
    assert report["n_compiled"] > 0
    assert set(report["kernel_cache_paths"]) == {None}
    assert stderr.count(NOTICE) == 1 and "every new process" in stderr
    assert report["outside_cache_path"] is not None  # others still cache
    assert list(planted.iterdir()) == []
    assert _package_numba_files() == package_files


def test_cache_subfolders_do_not_depend_on_the_install_path(tmp_path):
    for package in (Path(numba_cache.PACKAGE_DIR), tmp_path / "site" / "mtlinear"):
        real = numba_cache._real_dir(package)
        assert numba_cache.module_subfolder(
            str(package / "_bcd.py"), real) == "mtlinear"
        assert numba_cache.module_subfolder(
            str(package / "penalties" / "l21.py"), real) == "mtlinear.penalties"


def _shipped_tree(shipped, digest, target):
    source = shipped / f"mtlinear-{digest}" / "mtlinear"
    source.mkdir(parents=True)
    (source / "kernel-10.py311.nbi").write_bytes(b"index")
    (source / "kernel-10.py311.1.nbc").write_bytes(b"code")
    (shipped / numba_cache.TARGET_FILE).write_text(json.dumps(target))


def test_shipped_kernels_seed_an_empty_cache_once(tmp_path):
    shipped, root = tmp_path / "_kernels", tmp_path / "cache" / "mtlinear-ab"
    root.mkdir(parents=True)
    _shipped_tree(shipped, "ab", numba_cache.compile_target())
    assert numba_cache.seed_from_shipped(str(root), str(shipped))
    assert (root / "mtlinear" / "kernel-10.py311.nbi").read_bytes() == b"index"
    assert (root / "mtlinear" / "kernel-10.py311.1.nbc").read_bytes() == b"code"
    assert not list(root.rglob("*.part"))
    # once: a cache extended since (or cleared by the user) is left alone
    (root / "mtlinear" / "kernel-10.py311.nbi").write_bytes(b"extended")
    assert not numba_cache.seed_from_shipped(str(root), str(shipped))
    assert (root / "mtlinear" / "kernel-10.py311.nbi").read_bytes() == b"extended"


@pytest.mark.parametrize("case", ["other_target", "other_hash", "kernels_present",
                                  "no_target"])
def test_shipped_kernels_left_alone(tmp_path, case):
    shipped, root = tmp_path / "_kernels", tmp_path / "cache" / "mtlinear-ab"
    (root / "mtlinear").mkdir(parents=True)
    target = numba_cache.compile_target()
    if case == "other_target":
        target = [target[0], "another-cpu", target[2]]
    _shipped_tree(shipped, "cd" if case == "other_hash" else "ab", target)
    if case == "kernels_present":
        (root / "mtlinear" / "own-3.py311.nbi").write_bytes(b"own")
    if case == "no_target":
        (shipped / numba_cache.TARGET_FILE).unlink()
    assert not numba_cache.seed_from_shipped(str(root), str(shipped))
    assert not (root / "mtlinear" / "kernel-10.py311.nbi").exists()


def test_a_copy_of_the_package_loads_the_kernels_it_ships(cold_and_warm, tmp_path):
    """The kernels one installation compiled, shipped in another copy of the
    same sources elsewhere: its first process compiles nothing and prints
    no notice (the build's route: :mod:`mtlinear._precompile`)."""
    package = Path(_copy_package(tmp_path / "site" / "mtlinear"))
    digest = numba_cache.source_hash(package)
    assert digest == numba_cache.source_hash()
    shutil.copytree(cold_and_warm["workdir"] / "numba" / f"mtlinear-{digest}",
                    package / numba_cache.SHIPPED_DIR / f"mtlinear-{digest}")
    (package / numba_cache.SHIPPED_DIR / numba_cache.TARGET_FILE).write_text(
        json.dumps(numba_cache.compile_target()))
    cache = tmp_path / "numba"
    env = _clean_env(NUMBA_CACHE_DIR=cache, PYTHONPATH=tmp_path / "site")
    report, stderr = _run_fits(env, tmp_path, "prox", cwd=tmp_path)
    assert report["cache_dir"] == str(cache / f"mtlinear-{digest}")
    assert report["n_compiled"] == 0
    assert NOTICE not in stderr, stderr
    assert (cache / f"mtlinear-{digest}" / numba_cache.SEEDED_MARK).exists()


def test_precompile_ships_this_process_cache_with_its_target(tmp_path, monkeypatch):
    from mtlinear import _precompile
    fits = []
    monkeypatch.setattr(_precompile, "compile_common_fits", lambda: fits.append(1))
    _precompile.main(str(tmp_path))
    assert fits == [1]
    root = Path(numba_cache.cache_dir())
    shipped = tmp_path / root.name
    assert sorted(p.relative_to(shipped) for p in shipped.rglob("*.nbi")) == \
        sorted(p.relative_to(root) for p in root.rglob("*.nbi"))
    target = json.loads((tmp_path / numba_cache.TARGET_FILE).read_text())
    assert target == numba_cache.compile_target()


@pytest.mark.slow
def test_a_built_wheel_ships_kernels_the_first_fit_loads(tmp_path):
    """The build (setup.py) compiles the common fits into the wheel; a fresh
    process of the installed wheel, with an empty cache, compiles no kernel
    for the README's first example."""
    repo = Path(numba_cache.PACKAGE_DIR).parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(repo),
                    "-w", str(tmp_path / "wheel")],
                   check=True, capture_output=True, timeout=1200)
    wheel = next((tmp_path / "wheel").glob("mtlinear-*.whl"))
    shutil.unpack_archive(str(wheel), str(tmp_path / "site"), "zip")
    assert list((tmp_path / "site" / "mtlinear" / numba_cache.SHIPPED_DIR).rglob("*.nbi"))
    env = _clean_env(NUMBA_CACHE_DIR=tmp_path / "numba",
                     PYTHONPATH=tmp_path / "site")
    report, stderr = _run_fits(env, tmp_path, "fit", cwd=tmp_path)
    assert report["n_compiled"] == 0
    assert NOTICE not in stderr, stderr

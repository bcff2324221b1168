"""The Numba cache falls back to a writable directory on a read-only install."""
import os
import subprocess
import sys
import textwrap


def test_fallback_cache_dir_is_used_when_nothing_else_is_writable(tmp_path):
    module = tmp_path / "readonly_pkg" / "kernels.py"
    module.parent.mkdir()
    module.write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def twice(x):
            return 2 * x
    """))
    script = textwrap.dedent(f"""
        import sys
        import numba
        import mtlinear._numba_cache as cache
        numba.config.CACHE_DIR = ""
        chosen = cache.ensure_writable_cache(is_writable=lambda path: False)
        sys.path.insert(0, {str(module.parent)!r})
        import kernels
        assert kernels.twice(21) == 42
        print(chosen)
    """)
    env = dict(os.environ, TMPDIR=str(tmp_path), NUMBA_CACHE_DIR="")
    out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out.startswith(str(tmp_path))
    cached = [name for _, _, files in os.walk(out) for name in files]
    assert any(name.startswith("kernels.twice") for name in cached), cached


def test_user_setting_is_respected(monkeypatch, tmp_path):
    import numba

    import mtlinear._numba_cache as cache
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    assert cache.ensure_writable_cache(is_writable=lambda path: False) == str(tmp_path)

"""Build hook: ship the common fits' compiled kernels in the package.

After copying the sources, the build runs ``python -m mtlinear._precompile``
on them with an empty Numba cache (about 1.5 minutes) and puts the result
in ``mtlinear/_kernels``; the first import on the same machine copies it to
the user's compile cache (see ``mtlinear/_numba_cache.py``), so the first fit
does not wait for compilation.  Where compiling fails the package is built
without them and compiles on first use.  ``MTLINEAR_PRECOMPILE=0`` skips
the step; editable installs never take it.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithKernels(build_py):
    def run(self):
        super().run()
        if self.editable_mode or os.environ.get("MTLINEAR_PRECOMPILE") == "0":
            return
        build_lib = os.path.abspath(self.build_lib)
        destination = os.path.join(build_lib, "mtlinear", "_kernels")
        shutil.rmtree(destination, ignore_errors=True)
        print("mtlinear: compiling the solvers' kernels for this machine "
              "(about 1.5 minutes)", flush=True)
        with tempfile.TemporaryDirectory() as cache, \
                tempfile.TemporaryDirectory() as elsewhere:
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith("NUMBA_")}
            # keep the build environment's own path (pip's isolated build
            # reaches its packages through it)
            path = [build_lib, *filter(None, [env.get("PYTHONPATH")])]
            env.update(NUMBA_CACHE_DIR=cache, MTLINEAR_QUIET_COMPILE="1",
                       PYTHONPATH=os.pathsep.join(path))
            # run outside the source tree, so that the built copy is imported
            done = subprocess.run(
                [sys.executable, "-m", "mtlinear._precompile", destination],
                env=env, cwd=elsewhere)
        if done.returncode != 0:
            shutil.rmtree(destination, ignore_errors=True)
            print("mtlinear: the kernels could not be compiled ahead; they "
                  "will compile on first use", file=sys.stderr, flush=True)


setup(cmdclass={"build_py": BuildWithKernels})

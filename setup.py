"""The optional C extension bnn_edge.hardware.packed._xnor: the packed engine's XNOR kernels.

Metadata lives in pyproject.toml; this file only adds the extension. ``pip install .``
compiles it with the system's C compiler (OpenMP threads where the compiler has them,
else one thread). Without a compiler, or if compiling fails, the package installs
without it and the engine runs its numpy path (one warning at import).
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

BUILD_ERRORS = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError,
                ValueError)


def _flags(compiler_type: str, openmp: bool) -> tuple[list[str], list[str]]:
    """Compile and link flags: optimised, no FMA contraction (scores stay exact), OpenMP."""
    if compiler_type == "msvc":
        return ["/O2", "/fp:precise"] + (["/openmp"] if openmp else []), []
    compile_args = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]
    if openmp:
        return compile_args + ["-fopenmp"], ["-fopenmp"]
    return compile_args, []


class OptionalBuildExt(build_ext):
    """build_ext that tries OpenMP, then no OpenMP, then gives up without failing the install."""

    def run(self):
        try:
            super().run()
        except BUILD_ERRORS as e:
            self._skip(e)

    def build_extension(self, ext):
        base_compile, base_link = list(ext.extra_compile_args), list(ext.extra_link_args)
        error = None
        for openmp in (True, False):
            compile_args, link_args = _flags(self.compiler.compiler_type, openmp)
            ext.extra_compile_args = base_compile + compile_args
            ext.extra_link_args = base_link + link_args
            try:
                super().build_extension(ext)
                return
            except BUILD_ERRORS as e:
                error = e
        self._skip(error)

    @staticmethod
    def _skip(error) -> None:
        print(f"warning: bnn_edge: the C extension bnn_edge.hardware.packed._xnor was not built "
              f"({type(error).__name__}: {error}); the packed engine will use numpy",
              file=sys.stderr)


XNOR_SOURCES = "bnn_edge/hardware/packed/csrc"

setup(
    # the kernels (kernels.c) and their CPython binding (binding.c), one extension module
    ext_modules=[Extension("bnn_edge.hardware.packed._xnor",
                           [f"{XNOR_SOURCES}/binding.c", f"{XNOR_SOURCES}/kernels.c"],
                           depends=[f"{XNOR_SOURCES}/kernels.h"], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)

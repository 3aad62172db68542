"""Builds the one compiled extension, receiver/formats/_decode.pyx (the metadata is in pyproject.toml).

The extension is optional, as aiohttp's and msgpack's are: with RECEIVER_NO_EXTENSIONS=1, or
when Cython or a C compiler is missing, the package installs without it and the receiver
runs the pure-Python decoders (it logs which one runs at start).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE = "receiver/formats/_decode.pyx"


class OptionalBuildExt(build_ext):
    """build_ext that warns, once, instead of failing when the extension cannot be compiled."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure leaves the pure-Python path
            print(f"warning: the compiled decoder was not built ({exc}); the pure-Python one runs", file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: {ext.name} was not built ({exc}); the pure-Python decoder runs", file=sys.stderr)
            ext.failed = True  # type: ignore[attr-defined]

    def copy_extensions_to_source(self) -> None:
        # `--inplace` copies what was built next to the sources: not what failed, already told.
        self.extensions = [ext for ext in self.extensions if not getattr(ext, "failed", False)]
        super().copy_extensions_to_source()


def extensions() -> list[Extension]:
    if os.environ.get("RECEIVER_NO_EXTENSIONS") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is not installed; the pure-Python decoder runs", file=sys.stderr)
        return []
    return cythonize(
        [Extension("receiver.formats._decode", [SOURCE], extra_compile_args=["-O2"])],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})

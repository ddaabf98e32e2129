"""Builds the package's compiled operators with CMake against the installed torch.

`pip install --no-build-isolation ./python` runs this: CMake configures this folder (which takes
the ogpsa headers from the repository around it, or from an installed ogpsa), builds
`_ogpsa_ops.so` and puts it into the package. With OGPSA_OPS_LIBRARY set to a library built
already (the repository's own build does this in its install test), that file is packaged instead.
"""

import os
import pathlib
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = pathlib.Path(__file__).resolve().parent


def version():
    text = (HERE.parent / "include" / "ogpsa" / "version.hpp").read_text()
    parts = [re.search(r"OGPSA_VERSION_%s\s+(\d+)" % p, text).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def build_library(build_dir):
    """Configures and builds python/CMakeLists.txt; returns the built library's path."""
    import torch.utils

    jobs = str(os.cpu_count() or 1)
    subprocess.check_call(["cmake", "-S", str(HERE), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                           "-DCMAKE_PREFIX_PATH=" + torch.utils.cmake_prefix_path])
    subprocess.check_call(["cmake", "--build", str(build_dir), "--parallel", jobs])
    return build_dir / "ogpsa" / "_ogpsa_ops.so"


class build_with_operators(build_py):
    def run(self):
        super().run()
        prebuilt = os.environ.get("OGPSA_OPS_LIBRARY")
        library = pathlib.Path(prebuilt) if prebuilt else build_library(pathlib.Path(self.build_lib).parent / "cmake")
        package = pathlib.Path(self.build_lib) / "ogpsa"
        package.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, package / "_ogpsa_ops.so")


class binary_distribution(Distribution):
    """The package holds a compiled library: its wheel is for this platform, not pure Python."""

    def has_ext_modules(self):
        return True


setup(version=version(), cmdclass={"build_py": build_with_operators}, distclass=binary_distribution)

"""Finds and loads the compiled extension `_ogpsa_ops`, which holds the projector.

The extension registers TorchScript operators and a custom class with torch (``TORCH_LIBRARY``)
instead of using the Python C API, so it is not a Python module: it is a shared library found as a
file and loaded with ``torch.ops.load_library``. The file is the one named by the environment
variable ``OGPSA_OPS_LIBRARY`` when that is set (a build tree, the test suite), otherwise the
``_ogpsa_ops*.so`` installed next to this package.
"""

import glob
import os

import torch

ENVIRONMENT_VARIABLE = "OGPSA_OPS_LIBRARY"

# The name an ImportError carries when no extension file exists, so that callers (the test suite)
# can tell "not built" from "built but broken".
EXTENSION_NAME = "ogpsa._ogpsa_ops"


def _candidates():
    """The files that may be the extension, and how they were looked for (for messages)."""
    explicit = os.environ.get(ENVIRONMENT_VARIABLE)
    if explicit:
        return [explicit], f"{ENVIRONMENT_VARIABLE}={explicit}"
    pattern = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ogpsa_ops*.so")
    return sorted(glob.glob(pattern)), f"{pattern} ({ENVIRONMENT_VARIABLE} is not set)"


def load():
    """Loads the extension once per process and returns its path.

    Raises ImportError naming the paths tried when there is no such file (with ``name`` set to
    ``EXTENSION_NAME``), and an ImportError with torch's reason when the file does not load.
    """
    paths, tried = _candidates()
    found = [path for path in paths if os.path.isfile(path)]
    if not found:
        raise ImportError(
            f"ogpsa: the compiled extension _ogpsa_ops was not found (tried {tried}); install the "
            f"package with `pip install --no-build-isolation ./python`, or set "
            f"{ENVIRONMENT_VARIABLE} to the path of a built _ogpsa_ops.so",
            name=EXTENSION_NAME,
        )
    path = os.path.abspath(found[0])
    try:
        torch.ops.load_library(path)
    except (OSError, RuntimeError) as error:
        raise ImportError(f"ogpsa: could not load the extension {path}: {error}", path=path) from error
    return path


PATH = load()
ops = torch.ops.ogpsa
Projector = torch.classes.ogpsa.Projector

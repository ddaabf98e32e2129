"""ogpsa for PyTorch: orthogonal gradient projection for safety alignment (OGPSA, Sun et al.,
arXiv 2602.07892), compiled from the same C++ headers as the C++ library.

Switching a trainer to it is one line: build ``ogpsa.ProjectedOptimizer`` where the trainer builds
its optimizer, and give it a reference function that feeds the capability objective::

    opt = ogpsa.ProjectedOptimizer(model.named_parameters(), torch.optim.AdamW, lr=1e-5,
                                   estimator="exact_svd", rank=8, family="right", placement="update")
    opt.set_reference(lambda pass_: [pass_.feed(lm_loss(model, batch)) for batch in general])

Importing the package loads the compiled extension (see ``ogpsa._library``) and raises ImportError
naming the paths it tried when there is none.
"""

from ._library import PATH as library_path
from ._library import ops as _ops
from .diagnostics import Projection, Refresh
from .optimizer import ProjectedOptimizer
from .reference import ReferencePass

#: The version of the C++ headers the extension was compiled from.
__version__ = _ops.version()

__all__ = ["ProjectedOptimizer", "ReferencePass", "Projection", "Refresh", "library_path"]

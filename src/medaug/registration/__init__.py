"""Registration: learn deformations between patients, transfer labels, check field quality.

- :func:`register` — affine then B-spline registration of a moving image onto
  a fixed one (SimpleITK), with a time limit and a quality report (metric
  before/after, Jacobian range, folds).
- :class:`DisplacementField` — a displacement in mm with geometry, ITK's
  convention (``x_moving = x + u(x)``); :func:`save_field` / :func:`load_field`.
- :func:`learn_deformations` — the ``medaug learn-deformations`` job: register
  the cases of a dataset to a reference (or random pairs) and store the fields,
  resumably; :class:`~medaug.spatial.learned.RandomLearnedDeformation` then
  applies them as augmentation.
"""

from ..data.field import DisplacementField, coarse_grid, jacobian_determinant, load_field, save_field
from .register import METRICS, RegistrationReport, RegistrationResult, register

__all__ = [
    "DisplacementField", "coarse_grid", "jacobian_determinant", "load_field", "save_field",
    "METRICS", "RegistrationReport", "RegistrationResult", "register",
]

"""Enhancement and restoration of single images: CLAHE, N4 bias correction, denoising, unsharp masking.

Each function takes an :class:`~medaug.data.image.Image` and returns the
result on the same grid (never a geometry change) with an
:class:`EnhanceReport` of what was done (parameters, estimated values, run
time).  Integer images are rounded back to their dtype unless
``keep_dtype=False``.  The command line is ``medaug enhance IN OUT --method ...``.

Examples
--------
>>> from medaug.data.sample_data import ct_small
>>> from medaug.enhance import clahe
>>> out, report = clahe(ct_small(), clip_limit=0.02, tiles=8)
>>> out.grid.same_as(ct_small().grid), report.method
(True, 'clahe')
"""

from __future__ import annotations

from ._common import EnhanceReport
from .bias import n4_bias_correction
from .contrast import clahe, unsharp_mask
from .denoise import DENOISERS, denoise, estimate_noise

__all__ = [
    "EnhanceReport", "clahe", "unsharp_mask", "n4_bias_correction", "denoise", "estimate_noise", "DENOISERS", "METHODS",
]

#: ``medaug enhance --method`` name -> one-line description.
METHODS = {
    "clahe": "contrast-limited adaptive histogram equalisation (--clip-limit, --tiles, --lo/--hi)",
    "n4": "N4 bias-field correction for MRI (--shrink, --iterations, --save-field)",
    "denoise": "edge-preserving denoising (--denoiser curvature|bilateral|nlm)",
    "unsharp": "unsharp masking (--sigma-mm, --amount)",
}

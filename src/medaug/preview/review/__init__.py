"""The radiologist review page: ``medaug review DIR`` over an expansion output folder.

Three modes.  ``blind``: a reviewer judges each augmented sample "realistic" or
"not realistic", seeing the original and the transforms only after the verdict;
``open``: the same with the original beside it and the transforms shown;
``turing``: a visual Turing test, originals and augmented images mixed and
unlabelled, each answered "real" or "augmented" with a confidence.  The page is
a reading view (zoom, pan, window/level and presets, three planes, label
overlay, orientation markers, mm scale, value readout) drawn in the browser
from raw voxels.  Answers go to ``DIR/review.sqlite``; :func:`summarize` and
:func:`turing_summary` give the shares per transform and parameter range with
Wilson intervals.  See :mod:`.app` for the routes, :mod:`.server` for the
security rules, :mod:`.images` for the orientation, :mod:`.turing` for the
test's design and :mod:`.summary` for the binning.
"""

from .app import MODES, TuringApp, VerdictApp, make_app
from .server import ReviewServer
from .store import ReviewSample, VerdictStore, read_samples
from .summary import (
    SummaryRow,
    TuringTable,
    format_suggestions,
    format_summary,
    format_turing,
    suggest_limits,
    summarize,
    summary_json,
    turing_summary,
    wilson,
)
from .turing import TuringStore, turing_items

__all__ = ["MODES", "ReviewSample", "ReviewServer", "SummaryRow", "TuringApp", "TuringStore", "TuringTable",
           "VerdictApp", "VerdictStore", "format_suggestions", "format_summary", "format_turing", "make_app",
           "read_samples", "suggest_limits", "summarize", "summary_json", "turing_items", "turing_summary", "wilson"]

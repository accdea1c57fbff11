"""The radiologist review page: ``medaug review DIR`` over an expansion output folder.

A reviewer judges each augmented sample, shown beside its original, as
"realistic" or "not realistic"; verdicts go to ``DIR/review.sqlite`` and
:func:`summarize` gives the share judged realistic per transform and parameter
range.  See :mod:`.server` for the routes and the security rules, and
:mod:`.summary` for the binning.
"""

from .server import ReviewApp, ReviewServer
from .store import ReviewSample, VerdictStore, read_samples
from .summary import SummaryRow, format_summary, summarize

__all__ = ["ReviewApp", "ReviewSample", "ReviewServer", "SummaryRow", "VerdictStore", "format_summary", "read_samples",
           "summarize"]

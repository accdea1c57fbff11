"""Progress of a batch job, counted in output items: ``12/60 items [00:30<02:00]``, and what a resumed run finds.

``medaug expand``, ``medaug learn-deformations`` and ``medaug experiment``
write many output items (augmented cases, deformation fields, trained runs).
:class:`ItemProgress` shows how many of them exist, with the rate and the
estimated time left (a tqdm bar on stderr), and says first how many a
previous, interrupted run already finished: ``resuming: 52 of 60 done``.
The rate and the estimate count only the items made by this run.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..errors import plural

__all__ = ["ItemProgress", "count_line", "resume_line"]


def resume_line(done: int, total: int, unit: str = "items") -> str:
    """``resuming: 52 of 60 items done`` (a resumed job's first line).

    Examples
    --------
    >>> resume_line(52, 60)
    'resuming: 52 of 60 items done'
    >>> resume_line(0, 1, "fields")
    'resuming: 0 of 1 field done'
    """
    return f"resuming: {done} of {_counted(total, unit)} done"


def _counted(total: int, unit: str) -> str:
    """``60 items``, ``1 item``: ``unit`` is plural, its singular drops the final s."""
    return plural(total, unit[:-1] if unit.endswith("s") else unit, unit)


def count_line(done: int, total: int, seconds: float, unit: str = "items", *, earlier: int = 0) -> str:
    """``3 of 12 runs, about 4 min left``: a count with the time left at the rate so far (for jobs logged line by line).

    ``earlier`` of the ``done`` items were finished before (a resumed job): the rate counts the others,
    made in ``seconds``.

    Examples
    --------
    >>> count_line(3, 12, 90.0, "runs")
    '3 of 12 runs, about 4.5 min left'
    >>> count_line(12, 12, 400.0, "runs")
    '12 of 12 runs'
    >>> count_line(1, 1, 5.0, "runs")
    '1 of 1 run'
    >>> count_line(6, 12, 30.0, "runs", earlier=5)
    '6 of 12 runs, about 3.0 min left'
    """
    text = f"{done} of {_counted(total, unit)}"
    if 0 < done - earlier and done < total:
        left = seconds / (done - earlier) * (total - done)
        text += f", about {left:.0f} s left" if left < 90 else f", about {left / 60:.1f} min left"
    return text


class ItemProgress:
    """A count of a job's output items with rate and ETA; says first when earlier runs finished some.

    Parameters
    ----------
    total : int
        Output items of the whole job.
    done : int
        Items already finished by earlier runs (a resumed job).
    unit : str
        What an item is, plural (``items``, ``fields``, ``runs``).
    prog : str
        Leads the resume line, e.g. ``medaug expand``.
    enabled : bool
        False: show nothing (``--quiet``, the Python API's ``progress=False``).
    file : text stream, optional
        Where to write (default ``sys.stderr``).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with ItemProgress(60, 52, prog="medaug expand", file=out) as bar:
    ...     bar.advance(8)
    >>> out.getvalue().splitlines()[0]
    'medaug expand: resuming: 52 of 60 items done'
    >>> bar.count
    60
    """

    def __init__(self, total: int, done: int = 0, *, unit: str = "items", prog: str = "medaug", enabled: bool = True,
                 file: TextIO | None = None) -> None:
        from tqdm import tqdm

        self.total, self.count = int(total), int(done)
        stream = file if file is not None else sys.stderr
        self.enabled, self._stream = enabled, stream
        if enabled and done:
            print(f"{prog}: {resume_line(done, total, unit)}", file=stream, flush=True)
        shape = f"{{desc}}: {{n_fmt}}/{{total_fmt}} {unit} {{percentage:3.0f}}%|{{bar}}| [{{elapsed}}<{{remaining}}, {{rate_fmt}}]"
        self._bar: Any = tqdm(total=self.total, initial=self.count, unit=f" {unit}", disable=not enabled, file=stream,
                              dynamic_ncols=True, desc=prog.removeprefix("medaug ").strip(), bar_format=shape)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more finished items."""
        self.set(self.count + n)

    def set(self, count: int) -> None:
        """Set the number of finished items (earlier runs included); never goes back."""
        if count > self.count:
            self._bar.update(count - self.count)
            self.count = count

    def write(self, text: str) -> None:
        """Print a line above the bar, on the bar's stream (standard error); nothing when the bar is off."""
        if self.enabled:
            self._bar.write(text, file=self._stream)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> ItemProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

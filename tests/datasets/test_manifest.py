"""The manifest: cells a spreadsheet would run are written as text, read back as given; file mode as the images."""

from __future__ import annotations

import csv
import os
import stat

from hypothesis import given
from hypothesis import strategies as st

from medaug.datasets.expand import ExpandJob, run_expand
from medaug.datasets.writing import escape_cell, read_manifest, unescape_cell
from medaug.preview.review.store import read_samples

from ..faults._util import PIPE, make_dataset

FORMULAS = ["=1+2", "+SUM(1)", "-2+3", "@cmd", "'=quoted"]


def test_formula_cells_are_quoted_and_numbers_are_not():
    assert [escape_cell(v) for v in [*FORMULAS, "\tx", "\rx"]] == [
        "'=1+2", "'+SUM(1)", "'-2+3", "'@cmd", "''=quoted", "'\tx", "'\rx"]
    assert [escape_cell(v) for v in (-1, "-0.25", "+3e-5", "case01", "'plain", "", None)] == [
        "-1", "-0.25", "+3e-5", "case01", "'plain", "", ""]


@given(st.text(max_size=12))
def test_reading_undoes_writing(text):
    escaped = escape_cell(text)
    assert unescape_cell(escaped) == text
    assert not escaped.startswith(("=", "@", "\t", "\r"))  # + and - only for numbers
    if escaped.startswith(("+", "-")):
        float(escaped)


def test_expand_manifest_is_safe_in_a_spreadsheet_and_read_back_whole(tmp_path):
    data = make_dataset(tmp_path / "data", n=1, size=16)
    lines = ["image,label,case_id"] + [f"images/case00.nii.gz,labels/case00.nii.gz,{cid}" for cid in FORMULAS]
    (data / "cases.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    run_expand(ExpandJob(str(data / "cases.csv"), str(out), PIPE, n=1, include_originals=True), progress=False)
    with (out / "manifest.csv").open(newline="") as fh:
        raw = list(csv.DictReader(fh))
    assert sorted({r["case_id"] for r in raw}) == sorted(escape_cell(c) for c in FORMULAS)
    assert all(not r[k].startswith(("=", "+", "@")) for r in raw for k in r)
    assert "-1" in {r["index"] for r in raw}  # the originals' index stays a number
    assert sorted({r["case_id"] for r in read_manifest(out / "manifest.csv")}) == sorted(FORMULAS)
    assert sorted({s.case_id for s in read_samples(out).values()}) == sorted(FORMULAS)  # the review page


def test_the_manifest_has_the_permissions_of_the_images(tmp_path):
    data = make_dataset(tmp_path / "data", n=1, size=16)
    old = os.umask(0o022)
    try:
        run_expand(ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=1), progress=False)
    finally:
        os.umask(old)
    image = next((tmp_path / "out" / "images").iterdir())
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "manifest.csv").st_mode)
    assert mode == stat.S_IMODE(os.stat(image).st_mode) == 0o644

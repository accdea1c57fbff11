"""Long jobs count their output items with an ETA, say when a run resumes, and on Ctrl-C that rerunning resumes."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import medaug
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.datasets.progress import ItemProgress, count_line

from ..faults._util import child_env, medaug_cmd

PIPE = [{"RandomAffine": {"rotation": 5}}, {"RandomNoise": {"std": [0, 5]}}]


def _dataset(root: Path, n: int = 2) -> Path:
    (root / "images").mkdir(parents=True)
    for i in range(n):
        medaug.save(medaug.shepp_logan_2d(24, seed=i).image, root / "images" / f"case{i}.nii.gz")
    return root


def _bar_counts(err: str) -> list[tuple[int, int]]:
    """Every ``done/total`` a tqdm bar drew (its lines end in carriage returns)."""
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) items ", err)]


def test_expand_counts_output_items_not_cases(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    run_expand(ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=3, include_originals=True))
    err = capsys.readouterr().err
    counts = _bar_counts(err)
    assert counts[-1] == (8, 8) and {t for _, t in counts} == {8}  # 2 cases x (3 copies + the original)
    assert "resuming" not in err


def test_a_resumed_expand_says_how_many_items_are_done(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    out = tmp_path / "out"
    run_expand(ExpandJob(str(data), str(out), PIPE, n=3), progress=False)
    rows = sorted((out / ".medaug" / "rows").glob("*.json"))
    for row in rows[:2]:  # as if the run had stopped before these two items
        row.unlink()
    summary = run_expand(ExpandJob(str(data), str(out), PIPE, n=3))
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "medaug expand: resuming: 4 of 6 items done"
    assert summary["written"] == 2 and _bar_counts(err)[-1] == (6, 6)


def test_quiet_jobs_print_nothing(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    run_expand(ExpandJob(str(data), str(tmp_path / "out"), PIPE, n=2), progress=False)
    assert capsys.readouterr().err == ""


def test_item_progress_never_goes_back_and_counts_from_earlier_runs():
    import io

    out = io.StringIO()
    with ItemProgress(10, 4, unit="fields", prog="medaug learn-deformations", file=out) as bar:
        bar.set(6)
        bar.set(5)
        bar.advance()
    assert bar.count == 7
    assert out.getvalue().startswith("medaug learn-deformations: resuming: 4 of 10 fields done\n")


def test_count_line_estimates_the_time_left_from_the_rate_so_far():
    assert count_line(0, 5, 0.0, "runs") == "0 of 5 runs"
    assert count_line(1, 5, 10.0, "runs") == "1 of 5 runs, about 40 s left"
    assert count_line(2, 8, 60.0, "runs") == "2 of 8 runs, about 3.0 min left"


def test_ctrl_c_says_rerunning_resumes_and_the_rerun_says_what_is_done(tmp_path):
    data = _dataset(tmp_path / "data", n=1)
    out = tmp_path / "out"
    cmd = medaug_cmd("expand", str(data), "-o", str(out), "--preset", "ct-light", "-n", "40", "--yes")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace", env=child_env(),
                            start_new_session=True)
    rows = out / ".medaug" / "rows"
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(list(rows.glob("*.json")) if rows.is_dir() else []) < 2:
        assert time.monotonic() < deadline, "no item written in 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    done = len(list(rows.glob("*.json")))
    assert err.rstrip().splitlines()[-1] == (f"medaug expand: interrupted by SIGINT: the {done} item(s) finished so "
                                            "far are kept; run the same command again to resume")
    rerun = subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", env=child_env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.splitlines()[0] == f"medaug expand: resuming: {done} of 40 items done"


def test_a_resumed_learn_deformations_counts_fields(tmp_path, capsys):
    from medaug.registration.learn import LearnJob, run_learn

    data = _dataset(tmp_path / "data", n=3)
    out = tmp_path / "fields"
    job = LearnJob(str(data), str(out), reference="case0", time_limit=20)
    run_learn(job, progress=False)
    next((out / ".medaug" / "rows").glob("*.json")).unlink()
    run_learn(job)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "medaug learn-deformations: resuming: 1 of 2 fields done"
    assert re.findall(r"(\d+)/(\d+) fields ", err)[-1] == ("2", "2")

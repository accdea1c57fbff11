"""A/B: the standard pipeline's time per call under two versions of medaug, measured alternately.

Ratios between runs of ``run.py`` move by about 10 % on a shared host, more than many single
changes gain; two versions timed in turns within minutes of each other are compared fairly.

    python benchmarks/ab.py 9ed0bdd HEAD                    # 2D, 1 thread, 4 rounds
    python benchmarks/ab.py 9ed0bdd HEAD --kind 3d --threads 2 --rounds 3

Each version is a git revision of this repository (its ``src`` is exported with ``git archive``
into a temporary folder) or a path to a ``src`` folder.  Each (version, round) runs in a fresh
process with the thread variables set; a process times ``--calls`` calls (after 10 untimed ones)
five times and reports the fastest, in ms per call.  The output lists every round and the median
per version.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

_CHILD = """
import sys, time
sys.path.insert(0, {src!r}); sys.path.insert(0, {bench!r})
import torch
torch.set_num_threads({threads})
import run, synthetic, medaug
assert medaug.__file__.startswith({src!r}), medaug.__file__
image, label = synthetic.make_inputs({kind!r})
pipe = run.medaug_pipeline_3d() if {kind!r} != "2d" else run.medaug_pipeline_2d()
for i in range(10):
    pipe(run._medaug_sample(medaug, image, label), seed=i)
best = float("inf")
for rep in range(5):
    t0 = time.perf_counter()
    for i in range({calls}):
        pipe(run._medaug_sample(medaug, image, label), seed=i)
    best = min(best, (time.perf_counter() - t0) / {calls})
print(best * 1e3)
"""


def _source(version: str, scratch: Path) -> Path:
    """A ``src`` folder for ``version``: a path as given, or a git revision exported into ``scratch``."""
    path = Path(version)
    if path.is_dir():
        return path.resolve()
    blob = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", version, "src"], capture_output=True, check=True).stdout
    target = scratch / version.replace("/", "_")
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("versions", nargs=2, help="two git revisions or src folders (A then B)")
    p.add_argument("--kind", default="2d", choices=["2d", "3d", "3d4"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--calls", type=int, default=None, help="calls per timed repetition (default 300 in 2D, 4 in 3D)")
    args = p.parse_args(argv)
    calls = args.calls or (300 if args.kind == "2d" else 4)
    env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    with tempfile.TemporaryDirectory() as scratch:
        sources = [_source(v, Path(scratch)) for v in args.versions]
        times: dict[str, list[float]] = {v: [] for v in args.versions}
        for r in range(args.rounds):
            for version, src in zip(args.versions, sources):
                code = _CHILD.format(src=str(src), bench=str(BENCH_DIR), threads=args.threads, kind=args.kind, calls=calls)
                done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True,
                                      text=True, timeout=3600)
                if done.returncode != 0:
                    print(f"{version}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                    return 1
                ms = float(done.stdout.strip().splitlines()[-1])
                times[version].append(ms)
                print(f"round {r + 1} {version}: {ms:.3f} ms per call", flush=True)
    a, b = args.versions
    ma, mb = statistics.median(times[a]), statistics.median(times[b])
    print(f"{args.kind}, {args.threads} thread(s): {a} {ma:.3f} ms, {b} {mb:.3f} ms per call (medians); B/A = {mb / ma:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

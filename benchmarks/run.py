"""Benchmark medaug against its peers on the standard pipeline.

Usage (from the repository root, with the project's venv)::

    python benchmarks/run.py [--threads 1,2] [--repeats N] [--quick]
                             [--only a,b] [--kinds 3d,2d] [--write-docs]
                             [--json results.json]

Peers: see ``benchmarks/peers.py`` (``PEERS``) and ``medaug`` (below).
Each (peer, kind, thread count) runs in its own child process; see
``benchmarks/harness.py`` for how time and memory are measured.

Plug-in point for medaug
------------------------
``medaug_pipeline_3d()`` / ``medaug_pipeline_2d()`` build the pipeline from
``MEDAUG_STANDARD_PIPELINE_YAML`` with ``medaug.pipeline_from_config``;
``build_medaug_3d`` / ``build_medaug_2d`` wrap the benchmark arrays as
``medaug.Sample(image=medaug.Image(arr, spacing=...), label=medaug.Image(lab, is_label=True))``
(inside the timed step, like the peers build their Subject / dict there)
and call ``pipeline(sample, seed=i)``.  If medaug cannot be imported (the
repository's ``src/`` is tried too) or building/running it raises, the
medaug rows are skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from peers import DEFAULT_PEERS, PEERS, TORCHIO2_ENV, Built, PeerUnavailable  # noqa: E402

# ==========================================================================
# medaug plug-in
# ==========================================================================
#: The standard pipeline as a medaug config (same parameters as peers.py).
MEDAUG_STANDARD_PIPELINE_YAML = """\
- RandomAffine: {rotation: 10, scale: [0.9, 1.1], translation: 5}
- RandomElastic: {control_points: 7, max_displacement: 7}
- RandomFlip: {axes: [LR], p: 0.5}
- RandomGamma: {log_gamma: 0.3}
- RandomNoise: {std: [0.02, 0.02]}
- RandomBiasField: {order: 3, coefficients: 0.5}
"""


def _import_medaug():
    try:
        import medaug
    except ImportError:
        src = REPO_ROOT / "src"
        if src.is_dir() and str(src) not in sys.path:
            sys.path.insert(0, str(src))
        try:
            import medaug
        except ImportError as exc:
            raise PeerUnavailable(f"medaug not importable: {exc}") from exc
    return medaug


def _standard_config() -> list:
    import yaml

    return yaml.safe_load(MEDAUG_STANDARD_PIPELINE_YAML)


def medaug_pipeline_3d():
    """The standard 3D pipeline built with medaug (called once, untimed)."""
    medaug = _import_medaug()
    return medaug.pipeline_from_config(_standard_config())


def medaug_pipeline_2d():
    """The standard 2D pipeline built with medaug (called once, untimed)."""
    medaug = _import_medaug()
    return medaug.pipeline_from_config(_standard_config())


def _medaug_array(img):
    data = getattr(img, "data", img)
    return data


def _medaug_sample(medaug, image, label):
    spacing = (1.0,) * label.ndim  # (x, y[, z]) mm
    return medaug.Sample(
        image=medaug.Image(image, spacing=spacing, channel_axis=image.ndim > label.ndim),
        label=medaug.Image(label, spacing=spacing, is_label=True),
    )


def _build_medaug(image, label, pipeline_factory):
    medaug = _import_medaug()
    pipeline = pipeline_factory()

    def step(seed: int):
        out = pipeline(_medaug_sample(medaug, image, label), seed=seed)
        return _medaug_array(out["image"]), _medaug_array(out["label"])

    return Built(step, f"medaug {getattr(medaug, '__version__', '?')}", "pipeline_from_config(standard pipeline)")


#: Samples per call of the batch row.
BATCH = 64


def build_medaug_batch_2d(image, label):
    """``pipeline.batch`` of 64 samples (each built inside the timed step, as the per-sample row does); time per sample."""
    medaug = _import_medaug()
    pipeline = medaug_pipeline_2d()

    def step(seed: int):
        samples = [_medaug_sample(medaug, image, label) for _ in range(BATCH)]
        outs = pipeline.batch(samples, seeds=[seed * BATCH + i for i in range(BATCH)])
        return _medaug_array(outs[0]["image"]), _medaug_array(outs[0]["label"])

    return Built(step, f"medaug {getattr(medaug, '__version__', '?')}",
                 f"pipeline.batch of {BATCH} samples, time per sample (peak MB: the whole batch)", samples_per_step=BATCH)


def build_medaug_3d(image, label):
    return _build_medaug(image, label, medaug_pipeline_3d)


def build_medaug_2d(image, label):
    return _build_medaug(image, label, medaug_pipeline_2d)


def build_medaug_3d4(image, label):
    return _build_medaug(image, label, medaug_pipeline_3d)


# name -> {kind: (module, builder)}
REGISTRY: dict[str, dict[str, tuple[str, str]]] = {
    "medaug": {"3d": ("run", "build_medaug_3d"), "2d": ("run", "build_medaug_2d"), "3d4": ("run", "build_medaug_3d4")},
    "medaug-batch64": {"2d": ("run", "build_medaug_batch_2d")},
    **{name: {kind: ("peers", fn) for kind, fn in kinds.items()} for name, kinds in PEERS.items()},
}
DEFAULT = ("medaug", "medaug-batch64", *DEFAULT_PEERS)


# ==========================================================================
# machine description and docs
# ==========================================================================
def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    try:
        import torch

        torch_v = torch.__version__
    except ImportError:
        torch_v = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1) if mem_gb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch_v,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def render_docs_block(rows: list[dict], machine: dict, settings: dict) -> str:
    from harness import markdown_table

    out = [START, ""]
    out.append(
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores, "
        f"{machine['memory_gb']} GB), {machine['platform']}, Python {machine['python']}, torch {machine['torch']}. "
        f"{settings['repeats']} timed repetitions after {settings['warmup']} warm-up call(s), peers interleaved "
        "round-robin, each (peer, threads) in its own process. 3D input: 189×233×197 (z, y, x) float32 + uint8 labels, "
        "1 mm; 3D four channels: the same volume as (4, z, y, x); 2D: 256×256; medaug-batch64: 64 samples per call, "
        "time per sample. Spread: fastest–slowest repetition behind the median. \"peak MB\": the largest increase of resident memory during one call over the resident "
        "memory before it (inputs, libraries and built pipeline excluded). Ratios are against the same kind and "
        "thread count; ⚠ marks an output check failure (label values not in the input, non-finite image or wrong size). "
        "n: repetitions behind the median (×k: k calls per repetition); repetitions during which other processes used "
        "more than 0.15 of a core are left out when at least 3 clean ones exist, * marks a median that had to include them."
    )
    out.append("")
    titles = {"3d": "3D", "2d": "2D", "3d4": "3D, four channels (the same volume as 4 channels, one label map)"}
    for kind in ("3d", "2d", "3d4"):
        kr = [r for r in rows if r["kind"] == kind]
        if kr:
            out.append(f"**{titles[kind]}**")
            out.append("")
            out.append(markdown_table(kr))
    targets = target_lines(rows)
    if targets:
        out.append("**Targets (issue 18; ratios from this run)**")
        out.append("")
        out.extend(targets)
        out.append("")
    if settings.get("profile"):
        out.append("**Where medaug's time goes (1 thread, mean ms per sample over the profiled calls)**")
        out.append("")
        out.append(profile_table(settings["profile"]))
    versions: dict[str, tuple[str, dict]] = {}
    for r in rows:
        if r["version"]:
            _v, notes = versions.setdefault(r["peer"], (r["version"], {}))
            if r["notes"]:
                notes.setdefault(r["notes"], []).append(r["kind"].upper())
    if versions:
        out.append("Peers:")
        out.append("")
        for peer, (v, notes) in versions.items():
            if len(notes) <= 1:
                text = "; ".join(notes)
            else:
                text = "; ".join(f"{n} ({'/'.join(sorted(set(k)))})" for n, k in notes.items())
            out.append(f"- **{peer}** — {v}: {text}")
        out.append("")
    skipped = sorted({(r["peer"], r["kind"], r["threads"], r["status"], r["reason"]) for r in rows if r["median_s"] is None})
    if skipped:
        out.append("Not measured:")
        out.append("")
        for peer, kind, threads, status, reason in skipped:
            out.append(f"- {peer} {kind.upper()} t={threads}: {status} ({reason[:200]})")
        out.append("")
    bad = [r for r in rows if r["median_s"] is not None and not r["check_ok"]]
    for r in bad:
        out.append(f"- ⚠ {r['peer']} {r['kind']} t={r['threads']}: {r['check']}")
    out.append(END)
    return "\n".join(out) + "\n"


def _median(rows: list[dict], peer: str, kind: str, threads: int) -> float | None:
    for r in rows:
        if (r["peer"], r["kind"], r["threads"]) == (peer, kind, threads):
            return r["median_s"]
    return None


def target_lines(rows: list[dict]) -> list[str]:
    """Each target of issue 18 with the ratio measured in this run (– when a row is missing)."""

    def ratio(a, b):
        return None if a is None or b is None else a / b

    def fmt(v, spec=".2f"):
        return "–" if v is None else format(v, spec)

    lines = []
    m2 = _median(rows, "medaug", "2d", 1)
    for peer, label in (("bgv2", "batchgeneratorsv2, elastic on (heavy)"),
                        ("bgv2-light", "batchgeneratorsv2, nnU-Net default: no elastic (light)"),
                        ("torchio2", "TorchIO 2.0a")):
        lines.append(f"- 2D, 1 thread, medaug ≥ 5× faster than {label}: "
                     f"**{fmt(ratio(_median(rows, peer, '2d', 1), m2))}×**")
    lines.append(f"- 2D batch of 64, per sample ≤ 3× the floor's per-sample time (1 thread): "
                 f"**{fmt(ratio(_median(rows, 'medaug-batch64', '2d', 1), _median(rows, 'floor', '2d', 1)))}×**"
                 f" (2 threads: {fmt(ratio(_median(rows, 'medaug-batch64', '2d', 2), _median(rows, 'floor', '2d', 2)))}×)")
    for t, goal in ((1, "0.4"), (2, "0.5")):
        lines.append(f"- 3D, {t} thread(s), ≤ {goal}× the floor: "
                     f"**{fmt(ratio(_median(rows, 'medaug', '3d', t), _median(rows, 'floor', '3d', t)))}×**")
    for t in (1, 2):
        m4, m1 = _median(rows, "medaug", "3d4", t), _median(rows, "medaug", "3d", t)
        peers = ", ".join(f"{p} {fmt(ratio(_median(rows, p, '3d4', t), m4))}× medaug's time"
                          for p in ("bgv2", "torchio2", "floor") if _median(rows, p, "3d4", t))
        lines.append(f"- 3D four channels vs one channel of the same size, {t} thread(s), ≤ 2×: **{fmt(ratio(m4, m1))}×**"
                     + (f" ({peers})" if peers else ""))
    batch = [r for r in rows if r["peer"] == "medaug-batch64" and r["peak_mb"] is not None]
    if batch:
        out_mb = 64 * 256 * 256 * (4 + 1) / 2**20  # float32 image + uint8 label per sample
        lines.append(f"- peak memory of a 2D batch of 64 beyond its inputs ≤ 2× its output ({out_mb:.0f} MB): "
                     f"**{min(r['peak_mb'] for r in batch):.0f} MB** "
                     f"({min(r['peak_mb'] for r in batch) / out_mb:.2f}×)")
    return lines


PROFILE_STAGES = (
    ("sample", "building Sample/Image (the benchmark's own step)"),
    ("draw", "drawing parameters (Compose.resolve)"),
    ("plan", "planning the sweep (composed map, lattice, fills, programs)"),
    ("lattice", "  of which the elastic lattice (plan_coordinates)"),
    ("sweep", "the fused sweep (Numba kernel, all images)"),
    ("finish", "new Sample, points, history"),
    ("total", "whole call"),
)


def profile_stages(kind: str, calls: int) -> dict:
    """Mean seconds per call of each stage of the medaug pipeline (1 thread), measured by wrapping the engine's steps."""
    import importlib
    import time

    import synthetic
    import torch

    torch.set_num_threads(1)
    medaug = _import_medaug()
    execute = importlib.import_module("medaug.engine.execute")
    compose = importlib.import_module("medaug.engine.compose")
    image, label = synthetic.make_inputs(kind)
    pipeline = medaug_pipeline_3d() if kind != "2d" else medaug_pipeline_2d()
    spent = dict.fromkeys([k for k, _ in PROFILE_STAGES], 0.0)

    def timed(owner, name, key):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t

        setattr(owner, name, wrapper)

    for owner, name, key in ((compose.Compose, "resolve", "draw"), (execute, "_plan_spatial", "plan"),
                             (execute, "plan_coordinates", "lattice"), (execute, "resample_batch", "sweep"),
                             (execute, "_finish_spatial", "finish")):
        timed(owner, name, key)
    for i in range(2):  # warm up
        pipeline(_medaug_sample(medaug, image, label), seed=i)
    spent = dict.fromkeys(spent, 0.0)
    for i in range(calls):
        t0 = time.perf_counter()
        sample = _medaug_sample(medaug, image, label)
        t1 = time.perf_counter()
        pipeline(sample, seed=100 + i)
        t2 = time.perf_counter()
        spent["sample"] += t1 - t0
        spent["total"] += t2 - t0
    return {k: v / calls for k, v in spent.items()}


def profile_table(profiles: dict) -> str:
    kinds = list(profiles)
    lines = ["| stage | " + " | ".join(k.upper() for k in kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for key, label in PROFILE_STAGES:
        lines.append(f"| {label} | " + " | ".join(f"{profiles[k][key] * 1e3:.2f}" for k in kinds) + " |")
    rest = {k: profiles[k]["total"] - sum(profiles[k][s] for s in ("sample", "draw", "plan", "sweep", "finish"))
            for k in kinds}
    lines.append("| other (checks, history, Python) | " + " | ".join(f"{rest[k] * 1e3:.2f}" for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def _profile_in_child(kinds: list[str]) -> dict:
    """:func:`profile_stages` in a fresh 1-thread child per kind (the parent keeps no library state)."""
    import subprocess

    env = {**os.environ, **{v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    out = {}
    for kind in kinds:
        calls = 100 if kind == "2d" else 5
        code = (f"import sys, json; sys.path.insert(0, {str(BENCH_DIR)!r}); import run; "
                f"print(json.dumps(run.profile_stages({kind!r}, {calls})))")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode == 0:
            out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            print(f"profile {kind} failed: {done.stderr[-500:]}", file=sys.stderr)
    return out


def write_docs(path: Path, block: str) -> None:
    if path.exists():
        text = path.read_text()
        if START in text and END in text:
            pre = text.split(START, 1)[0]
            post = text.split(END, 1)[1]
            text = pre + block.rstrip("\n") + post
        else:
            text = text.rstrip("\n") + "\n\n" + block
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "# Benchmarks\n\n" + block
    path.write_text(text)


# ==========================================================================
# CLI
# ==========================================================================
def _parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions per peer (default 5, --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up calls per peer (default 1)")
    p.add_argument("--quick", action="store_true", help="2 repetitions, 2D repetitions of >= 0.1 s")
    p.add_argument("--only", default=None, help=f"comma-separated peers; known: {', '.join(REGISTRY)}")
    p.add_argument("--kinds", default="3d,2d,3d4",
                   help="3d, 2d, 3d4 (the 3D volume as 4 channels), comma-separated (default all three)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for one call (default 300)")
    p.add_argument(
        "--max-extra-rounds",
        type=int,
        default=None,
        help="extra rounds for peers with fewer than --repeats repetitions free of other load (default: --repeats)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="before each repetition wait up to this many seconds for other processes to go quiet (shared machines)",
    )
    p.add_argument("--torchio2-path", default=None, help=f"site dir with TorchIO 2.0 (or set {TORCHIO2_ENV})")
    p.add_argument("--write-docs", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--docs-path", default=str(REPO_ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--json", default=None, help="also write all results to this JSON file")
    p.add_argument("--no-profile", action="store_true", help="skip the per-stage profile of medaug (1 thread)")
    p.add_argument("--log-dir", default=None, help="keep the children's stderr logs here")
    return p.parse_args(argv)


def _sigterm_to_exit(signum, frame):  # so that harness.run_group's cleanup runs
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    args = _parse_args(argv)
    import harness
    import synthetic

    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    kinds = [k.strip().lower() for k in args.kinds.split(",") if k.strip()]
    names = [n.strip() for n in args.only.split(",")] if args.only else list(DEFAULT)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"unknown peer(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    env = {}
    tio2 = args.torchio2_path or os.environ.get(TORCHIO2_ENV)
    if tio2:
        env[TORCHIO2_ENV] = str(Path(tio2).resolve())

    machine = machine_info()
    print(f"machine: {machine}")
    all_results = []
    for kind in kinds:
        configs = []
        for name in names:
            entry = REGISTRY[name].get(kind)
            if entry is None:
                continue
            for t in threads:
                configs.append(harness.Config(name, kind, t, entry[0], entry[1], env))
        if not configs:
            continue
        image, label = synthetic.make_inputs(kind)
        min_rep = 0.1 if args.quick else 0.25  # 2D calls are ms: time several per repetition
        print(f"\n== {kind.upper()} {image.shape} — {len(configs)} configs, {repeats} rounds ==", flush=True)
        results = harness.run_group(
            configs,
            image,
            label,
            repeats=repeats,
            warmup=args.warmup,
            min_rep_seconds=min_rep,
            timeout=args.timeout,
            max_extra_rounds=args.max_extra_rounds,
            wait_quiet_seconds=args.wait_quiet,
            log=lambda s: print(s, flush=True),
            log_dir=args.log_dir,
        )
        all_results.extend(results)
        for r in results:
            if r.config.peer == "medaug" and r.status in ("unavailable", "error"):
                print(f"  skipping medaug ({kind}): {r.reason.strip().splitlines()[0] if r.reason.strip() else r.status}")

    rows = harness.summarize(all_results)
    print()
    for kind in kinds:
        kr = [r for r in rows if r["kind"] == kind]
        if kr:
            print(f"{kind.upper()}:")
            print(harness.markdown_table(kr))
    settings = {"repeats": repeats, "warmup": args.warmup, "threads": threads}
    if not args.no_profile and ("medaug" in names):
        settings["profile"] = _profile_in_child([k for k in ("2d", "3d") if k in kinds])
        if settings["profile"]:
            print(profile_table(settings["profile"]))
    targets = target_lines(rows)
    print("\n".join(targets))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": machine, "settings": settings, "rows": rows, "results": [r.to_json() for r in all_results]},
                indent=1,
                default=str,
            )
        )
        print(f"wrote {args.json}")
    if args.write_docs:
        path = Path(args.docs_path)
        write_docs(path, render_docs_block(rows, machine, settings))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

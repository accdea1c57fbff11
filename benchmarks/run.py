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


def _build_medaug(image, label, pipeline_factory):
    medaug = _import_medaug()
    pipeline = pipeline_factory()
    spacing = (1.0,) * image.ndim  # (x, y[, z]) mm

    def step(seed: int):
        sample = medaug.Sample(
            image=medaug.Image(image, spacing=spacing),
            label=medaug.Image(label, spacing=spacing, is_label=True),
        )
        out = pipeline(sample, seed=seed)
        return _medaug_array(out["image"]), _medaug_array(out["label"])

    return Built(step, f"medaug {getattr(medaug, '__version__', '?')}", "pipeline_from_config(standard pipeline)")


def build_medaug_3d(image, label):
    return _build_medaug(image, label, medaug_pipeline_3d)


def build_medaug_2d(image, label):
    return _build_medaug(image, label, medaug_pipeline_2d)


# name -> {kind: (module, builder)}
REGISTRY: dict[str, dict[str, tuple[str, str]]] = {
    "medaug": {"3d": ("run", "build_medaug_3d"), "2d": ("run", "build_medaug_2d")},
    **{name: {kind: ("peers", fn) for kind, fn in kinds.items()} for name, kinds in PEERS.items()},
}
DEFAULT = ("medaug", *DEFAULT_PEERS)


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
        "1 mm; 2D: 256×256. \"peak MB\": the largest increase of resident memory during one call over the resident "
        "memory before it (inputs, libraries and built pipeline excluded). Ratios are against the same kind and "
        "thread count; ⚠ marks an output check failure (label values not in the input, non-finite image or wrong size). "
        "n: repetitions behind the median (×k: k calls per repetition); repetitions during which other processes used "
        "more than 0.15 of a core are left out when at least 3 clean ones exist, * marks a median that had to include them."
    )
    out.append("")
    for kind in ("3d", "2d"):
        kr = [r for r in rows if r["kind"] == kind]
        if kr:
            out.append(f"**{kind.upper()}**")
            out.append("")
            out.append(markdown_table(kr))
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
    p.add_argument("--kinds", default="3d,2d", help="3d, 2d or both (default 3d,2d)")
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

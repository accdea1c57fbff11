"""Summaries, paired comparisons, tables, figures and result files of the augmentation experiment.

Each comparison pairs a strategy with a reference (``none``, or for
test-time augmentation the same model without it) on the same seeds and test
cases: the mean difference with its 95 % bootstrap interval over test cases
and seeds, and for classification McNemar's test on the predictions pooled
over seeds (:mod:`.stats`).
"""

from __future__ import annotations

import csv
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ParameterError
from ..metrics import jsonable
from .stats import mcnemar, outside_noise, paired_bootstrap
from .train import RunResult

__all__ = ["PAPER", "compare", "format_tables", "machine", "model_path", "plot_curves", "plot_summary", "read_results",
           "summarize", "write_results"]

#: the study's numbers (Namozov & Cho), in per cent
PAPER: dict[str, dict[str, Any]] = {
    "none": {"train_acc": 85.7, "test_acc": 72.6, "label": "Set1 (no augmentation)"},
    "offline4x": {"train_acc": 93.2, "test_acc": 92.25, "label": "Set2 (flips + 90° rotation, 4N)"},
}

#: per task: the per-case metrics compared (key in RunResult.cases without the test-set prefix), scale, unit
METRICS: dict[str, list[tuple[str, str, float, str]]] = {
    "classification": [("acc", "correct", 100.0, "accuracy, points")],
    "segmentation": [("dice", "dice", 100.0, "Dice, points"), ("hd95", "hd95", 1.0, "HD95, mm")],
}
TEST_SETS = ("test", "shift")


def summarize(results: Sequence[RunResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per task and strategy: the seeds and the mean and standard deviation (ddof=1) of every metric."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.strategy), []).append(r)
    for (task, strategy), runs in groups.items():
        entry: dict[str, Any] = {"seeds": [r.seed for r in runs], "seconds": float(np.mean([r.seconds for r in runs]))}
        for key in runs[0].metrics:
            v = np.asarray([r.metrics.get(key, np.nan) for r in runs], np.float64)
            entry[key] = float(np.mean(v))
            entry[key + "_std"] = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
        out.setdefault(task, {})[strategy] = entry
    return out


def compare(results: Sequence[RunResult], pairs: Sequence[tuple[str, str, str]], *, n_boot: int = 10_000,
            seed: int = 0) -> list[dict[str, Any]]:
    """Paired comparisons ``(task, strategy, reference)`` on every test set and metric of the task.

    Returns one row per task, test set, metric and pair: the mean difference
    (strategy minus reference, in the metric's reported unit) with its 95 %
    interval, the seeds and cases per seed, McNemar's counts and p-values
    (classification), and whether the difference is outside the noise.
    """
    by = {(r.task, r.strategy, r.seed): r for r in results}
    rows = []
    for task, strategy, reference in pairs:
        seeds = sorted(s for (t, st, s) in by if t == task and st == strategy and (task, reference, s) in by)
        if not seeds:
            continue
        for test_set in TEST_SETS:
            for metric, key, scale, unit in METRICS[task]:
                name = f"{test_set}_{key}"
                if name not in by[(task, strategy, seeds[0])].cases:
                    continue
                a = [np.asarray(by[(task, strategy, s)].cases[name], np.float64) * scale for s in seeds]
                b = [np.asarray(by[(task, reference, s)].cases[name], np.float64) * scale for s in seeds]
                ci = paired_bootstrap(a, b, n_boot=n_boot, seed=seed)
                row: dict[str, Any] = {
                    "task": task, "test_set": test_set, "metric": metric, "unit": unit, "strategy": strategy,
                    "reference": reference, "seeds": len(seeds), "cases_per_seed": ci["cases"],
                    "diff": ci["mean"], "ci_lo": ci["lo"], "ci_hi": ci["hi"],
                    "outside_noise": outside_noise(ci),
                }
                if key == "correct":
                    m = mcnemar(np.concatenate(a) > 0, np.concatenate(b) > 0)
                    row.update(mcnemar_b=m["b"], mcnemar_c=m["c"], p_exact=m["p_exact"], p_chi2=m["p_chi2"])
                rows.append(row)
    return rows


def _verdict(row: dict[str, Any]) -> str:
    if not row["outside_noise"]:
        return "within the noise"
    better = row["diff"] < 0 if row["metric"] == "hd95" else row["diff"] > 0
    return "outside the noise, " + ("better" if better else "worse")


def format_tables(summary: dict[str, dict[str, dict[str, Any]]], comparisons: Sequence[dict[str, Any]], *,
                  markdown: bool = False) -> str:
    """Per task and test set: each strategy's mean ± std over seeds and its paired difference with the interval."""
    blocks = []
    for task, strategies in summary.items():
        for test_set in TEST_SETS:
            for metric, _key, scale, unit in METRICS[task]:
                col = f"{test_set}_{metric}"
                if not any(col in e for e in strategies.values()):
                    continue
                head = ["strategy", "seeds", f"{metric} ({unit.split(', ')[1]})", "difference [95 % CI]",
                        "McNemar p (exact)" if task == "classification" else "", "verdict"]
                rows = []
                for name, e in strategies.items():
                    if col not in e:
                        continue
                    cmp = next((c for c in comparisons if c["task"] == task and c["test_set"] == test_set
                                and c["metric"] == metric and c["strategy"] == name), None)
                    val = f"{scale * e[col]:.1f}" + (f" ± {scale * e[col + '_std']:.1f}" if len(e["seeds"]) > 1 else "")
                    diff = (f"{cmp['diff']:+.1f} vs {cmp['reference']} [{cmp['ci_lo']:+.1f}, {cmp['ci_hi']:+.1f}]"
                            if cmp else "–")
                    p = f"{cmp['p_exact']:.2g}" if cmp and "p_exact" in cmp else ""
                    rows.append([name, str(len(e["seeds"])), val, diff, p, _verdict(cmp) if cmp else "–"])
                if task != "classification":
                    head = head[:4] + head[5:]
                    rows = [r[:4] + r[5:] for r in rows]
                title = f"{task}, {'in-distribution test' if test_set == 'test' else 'scanner shift'}: {unit}"
                blocks.append(_table(title, head, rows, markdown))
    if "classification" in summary:
        blocks.append("paper (Namozov & Cho): Set1 = no augmentation, test 72.6 %; Set2 = flips + 90° rotation (4N), "
                      "test 92.25 %")
    return "\n\n".join(blocks)


def _table(title: str, head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([title, fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


# --------------------------------------------------------------------------- figures
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(results: Sequence[RunResult], path: str | Path) -> Path:
    """Learning curves, mean over seeds with a ±1 std band: accuracy (classification) and Dice (segmentation).

    Solid: in-distribution test; dotted: scanner shift; dashed: train (classification, on the originals).
    """
    plt = _pyplot()
    tasks = [t for t in ("classification", "segmentation") if any(r.task == t for r in results)]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(7 * max(len(tasks), 1), 5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, task in zip(axes[0], tasks):
        groups: dict[str, list[RunResult]] = {}
        for r in results:
            if r.task == task and r.curves.get("epoch"):
                groups.setdefault(r.strategy, []).append(r)
        metric = "acc" if task == "classification" else "dice"
        for k, (name, runs) in enumerate(groups.items()):
            n = min(len(r.curves["epoch"]) for r in runs)
            ep = np.asarray(runs[0].curves["epoch"][:n])
            for key, style in ((f"train_{metric}", "--"), (f"test_{metric}", "-"), (f"shift_{metric}", ":")):
                if not all(key in r.curves for r in runs):
                    continue
                v = 100 * np.asarray([r.curves[key][:n] for r in runs])
                m = v.mean(0)
                ax.plot(ep, m, style, color=colors[k % len(colors)], label=f"{name} {key.split('_')[0]}")
                if v.shape[0] > 1:
                    s = v.std(0, ddof=1)
                    ax.fill_between(ep, m - s, m + s, color=colors[k % len(colors)], alpha=0.1, linewidth=0)
        ax.set_xlabel("epoch (N training images per epoch, equal steps for all strategies)")
        ax.set_ylabel("accuracy (%)" if task == "classification" else "Dice (%)")
        ax.set_title(f"{task}: test (solid), shift (dotted)" + (", train (dashed)" if task == "classification" else ""),
                     fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_summary(comparisons: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One panel per task and metric: each paired difference with its 95 % interval, in-distribution and shift."""
    plt = _pyplot()
    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in comparisons:
        panels.setdefault((c["task"], c["metric"]), []).append(c)
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.2 * max(len(panels), 1), 4.2), squeeze=False)
    for ax, ((task, metric), rows) in zip(axes[0], panels.items()):
        labels = []
        for i, c in enumerate(rows):
            color = "#1f77b4" if c["test_set"] == "test" else "#d62728"
            ax.errorbar(c["diff"], i, xerr=[[c["diff"] - c["ci_lo"]], [c["ci_hi"] - c["diff"]]], fmt="o",
                        color=color, capsize=3, mfc=color if c["outside_noise"] else "white")
            labels.append(f"{c['strategy']} − {c['reference']} ({'shift' if c['test_set'] == 'shift' else 'test'})")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"difference in {rows[0]['unit']}" + (" (lower is better)" if metric == "hd95" else ""))
        ax.set_title(f"{task}: {metric} (95 % CI; filled = outside the noise)", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- files
def machine() -> dict[str, Any]:
    """CPU model, core count, Python and torch versions."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def read_results(out: str | Path) -> tuple[dict[str, Any], list[RunResult]] | None:
    """The runs that :func:`write_results` left in ``out``; None when it holds none.

    Metrics and curves come from ``results.json`` (metrics rounded to 4
    decimals, as written), the per-case values from ``cases.npz`` (exact) and
    the weights of segmentation runs from ``models/`` when they were kept.

    Raises
    ------
    ParameterError
        ``results.json`` or ``cases.npz`` cannot be read, or they disagree.
    """
    out = Path(out)
    path, cases_path = out / "results.json", out / "cases.npz"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        with np.load(cases_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read the previous run's results: {exc}; use another --out", path=out) from None
    results = []
    for run in doc.get("runs", []):
        task, strategy, seed = run["task"], run["strategy"], int(run["seed"])
        prefix = f"{task}__{strategy}__{seed}__"
        cases = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if not cases:
            raise ParameterError(f"cases.npz lacks the per-case values of {task} {strategy} seed {seed}; "
                                 "use another --out", path=out)
        metrics = {k: float(v) for k, v in run.items() if k not in ("task", "strategy", "seed", "seconds", "curves")}
        weights = model_path(out, task, strategy, seed)
        state = torch.load(weights, weights_only=True) if weights.is_file() else None
        results.append(RunResult(task, strategy, seed, float(run["seconds"]), metrics, cases, run.get("curves", {}),
                                 state))
    return doc, results


def model_path(out: str | Path, task: str, strategy: str, seed: int) -> Path:
    """Where :func:`write_results` keeps the weights of a run (segmentation runs, for test-time augmentation)."""
    return Path(out) / "models" / f"{task}__{strategy}__{seed}.pt"


def write_results(out: str | Path, results: Sequence[RunResult], meta: dict[str, Any],
                  comparisons: Sequence[dict[str, Any]] = ()) -> dict[str, Path]:
    """Write the result files to ``out`` (rewritten after every run, so partial results survive).

    ``results.csv`` (one row per run), ``comparisons.csv`` (one row per paired
    comparison), ``results.json`` (settings, machine, summary, comparisons,
    curves), ``cases.npz`` (the per-case values behind every statistic),
    ``models/`` (the weights of the runs that kept them), ``curves.png`` and,
    with comparisons, ``summary.png``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "json": out / "results.json", "cases": out / "cases.npz"}
    _write_csv(paths["csv"], [r.row() for r in results])
    if comparisons:
        paths["comparisons"] = out / "comparisons.csv"
        _write_csv(paths["comparisons"], comparisons)
    doc = {**meta, "summary": summarize(results), "comparisons": list(comparisons), "paper": PAPER,
           "runs": [{**r.row(), "curves": r.curves} for r in results]}
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(jsonable(doc), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(paths["json"])
    for r in results:
        weights = model_path(out, r.task, r.strategy, r.seed)
        if r.state is not None and not weights.is_file():
            weights.parent.mkdir(exist_ok=True)
            torch.save(r.state, weights.with_suffix(".tmp"))
            weights.with_suffix(".tmp").replace(weights)
    arrays = {f"{r.task}__{r.strategy}__{r.seed}__{k}": v for r in results for k, v in r.cases.items()}
    tmp = out / "cases.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(paths["cases"])
    paths["png"] = plot_curves(results, out / "curves.png")
    if comparisons:
        paths["summary_png"] = plot_summary(comparisons, out / "summary.png")
    return paths

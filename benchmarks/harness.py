"""Timing harness: every (peer, thread count) runs in its own fresh child process.

Why child processes
    * thread counts (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
      ``NUMBA_NUM_THREADS``, ITK's default) must be set before the libraries
      are imported, and ``torch.set_num_threads`` is per process;
    * peak memory is measured per peer: the child resets the kernel's RSS
      high-water mark (``/proc/self/clear_refs``) right before each timed call
      and reports ``VmHWM`` after it minus ``VmRSS`` before it, i.e. the
      extra resident memory the pipeline needed on top of its inputs, the
      built transforms and the libraries (falls back to ``ru_maxrss``);
    * TorchIO 2.0 and TorchIO 1.x cannot share a process.

Interleaving
    All children of a group (one kind, all peers x thread counts) are started
    first — each imports its peer, loads the inputs, builds the pipeline and
    runs its warm-up calls — and then wait, idle, on their stdin.  The parent
    then runs ``repeats`` rounds; in each round every child is asked, one at
    a time, for one timed repetition (the order rotates each round).  So a
    slow phase of the shared machine is spread over all peers instead of
    hitting one of them.

One repetition is ``inner`` consecutive calls of the pipeline on the same
input with different seeds (``inner`` is chosen during warm-up so a
repetition lasts at least ``min_rep_seconds``; it is 1 for the 3D peers) and
its time is divided by ``inner``: seconds per sample.  Reported are the
median over repetitions, samples/s = 1 / median, and ratios against the
batchgeneratorsv2 and the floor rows of the same kind and thread count.

The child protocol is JSON lines: the parent sends the spec, the child
answers ``ready`` (or ``unavailable`` / ``error``), then each ``run`` gets
one result line; ``quit`` ends it.  Protocol lines go to the child's
original stdout; anything libraries print goes to its stderr, which is kept
in a log file and shown when a child fails.
"""

from __future__ import annotations

import json
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


# ==========================================================================
# in-process utility
# ==========================================================================
def time_callable(fn: Callable[[Any], Any], arg: Any, *, warmup: int = 1, repeats: int = 5) -> dict:
    """Call ``fn(arg)`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns median seconds per call, samples/s and all times.  No process
    isolation and no memory measurement: use :func:`run_group` for those.
    """
    for _ in range(warmup):
        fn(arg)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"median_s": med, "samples_per_s": 1.0 / med if med > 0 else math.inf, "times": times}


# ==========================================================================
# memory helpers (child side)
# ==========================================================================
def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _rss_kb() -> int:
    v = _proc_status_kb("VmRSS")
    if v is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return v


def _hwm_kb() -> int:
    v = _proc_status_kb("VmHWM")
    if v is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return v


# ==========================================================================
# output check (child side, untimed)
# ==========================================================================
def _to_numpy(x):
    import numpy as np

    if hasattr(x, "as_tensor"):  # MONAI MetaTensor
        x = x.as_tensor()
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def check_outputs(out, image, label) -> dict:
    """Sanity of one pipeline output: same number of voxels, finite image, no new label values."""
    import numpy as np

    img, lab = _to_numpy(out[0]), _to_numpy(out[1])
    in_values = set(np.unique(label).tolist()) | {0}
    out_values = np.unique(lab)
    new = sorted(float(v) for v in out_values if float(v) not in in_values)
    res = {
        "image_shape": list(img.shape),
        "label_dtype": str(lab.dtype),
        "size_ok": bool(img.size == image.size and lab.size == label.size),
        "image_finite": bool(np.isfinite(img).all()),
        "new_label_values": new[:10],
        "n_new_label_values": len(new),
    }
    res["ok"] = res["size_ok"] and res["image_finite"] and not new
    return res


# ==========================================================================
# child process
# ==========================================================================
def _reason(exc: BaseException) -> str:
    """The exception and its root cause (libraries often wrap the real error)."""
    text = f"{type(exc).__name__}: {exc}"
    root = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__
    if root is not exc:
        text = f"{type(root).__name__}: {str(root)[:300]} (in {text[:120]})"
    return text


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies, so no child outlives an interrupted run."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; EOF on stdin also ends the child
        pass


def _worker() -> int:
    _die_with_parent()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by libraries goes to stderr
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    spec = json.loads(sys.stdin.readline())
    threads = int(spec["threads"])
    for p in reversed(spec.get("sys_path", [])):
        if p not in sys.path:
            sys.path.insert(0, p)
    import importlib
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    image = np.load(spec["image"])
    label = np.load(spec["label"])
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(spec["module"])
        built = getattr(module, spec["builder"])(image, label)
    except Exception as exc:  # noqa: BLE001 - report anything to the parent
        unavailable = type(exc).__name__ == "PeerUnavailable" or isinstance(exc, ImportError)
        send(
            {
                "status": "unavailable" if unavailable else "error",
                "reason": _reason(exc),
                "traceback": traceback.format_exc(),
            }
        )
        return 0
    build_s = time.perf_counter() - t0
    # libraries imported by the builder: pin their own pools too
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
    if "SimpleITK" in sys.modules:
        sys.modules["SimpleITK"].ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    if "numba" in sys.modules:
        try:
            sys.modules["numba"].set_num_threads(threads)
        except Exception:  # noqa: BLE001
            pass

    try:
        warm_times = []
        check = None
        for j in range(max(1, int(spec.get("warmup", 1)))):
            t = time.perf_counter()
            out = built.step(1_000_000 + j)
            warm_times.append(time.perf_counter() - t)
            if check is None:
                check = check_outputs(out, image, label)
            del out
    except Exception as exc:  # noqa: BLE001
        send({"status": "error", "reason": _reason(exc), "traceback": traceback.format_exc()})
        return 0
    min_rep = float(spec.get("min_rep_seconds", 0.0))
    per_call = min(warm_times)
    if 0 < per_call < max(4 * min_rep, 1.0):
        # the first calls may carry one-off costs (JIT, caches): time one more to size `inner`
        try:
            t = time.perf_counter()
            out = built.step(2_000_000)
            per_call = min(per_call, time.perf_counter() - t)
            del out
        except Exception as exc:  # noqa: BLE001
            send({"status": "error", "reason": _reason(exc), "traceback": traceback.format_exc()})
            return 0
    inner = 1 if per_call <= 0 or per_call >= min_rep else min(1000, math.ceil(min_rep / per_call))
    per_step = max(1, int(getattr(built, "samples_per_step", 1)))
    import gc

    gc.collect()
    send(
        {
            "status": "ready",
            "version": built.version,
            "notes": built.notes,
            "build_s": build_s,
            "warmup_s": warm_times,
            "inner": inner,
            "check": check,
            "baseline_rss_mb": _rss_kb() / 1024,
            "hwm_reset": _reset_hwm(),
        }
    )
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") != "run":
            break
        seed = int(cmd["seed"])
        ru0 = resource.getrusage(resource.RUSAGE_SELF)  # CPU of the whole command, for the contention check
        gc.collect()
        _reset_hwm()
        rss0 = _rss_kb()
        try:
            t = time.perf_counter()
            for m in range(inner):
                out = built.step(seed * inner + m)
                del out
            dt = (time.perf_counter() - t) / inner / per_step  # seconds per sample (a step may augment a batch)
        except Exception as exc:  # noqa: BLE001
            send({"status": "error", "reason": _reason(exc), "traceback": traceback.format_exc()})
            return 0
        hwm = _hwm_kb()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        send({"status": "ok", "t": dt, "wall": dt * inner, "cpu": cpu, "peak_mb": (hwm - rss0) / 1024, "hwm_mb": hwm / 1024})
    return 0


# ==========================================================================
# parent side
# ==========================================================================
@dataclass
class Config:
    peer: str  # display name
    kind: str  # "3d" or "2d"
    threads: int
    module: str  # module (in benchmarks/) holding the builder
    builder: str  # function name: builder(image, label) -> Built
    env: dict = field(default_factory=dict)  # extra environment for the child


@dataclass
class Result:
    config: Config
    status: str = "pending"  # ready/ok, unavailable, error, timeout
    reason: str = ""
    version: str = ""
    notes: str = ""
    inner: int = 1
    check: dict | None = None
    times: list = field(default_factory=list)
    peaks_mb: list = field(default_factory=list)
    contended: list = field(default_factory=list)  # per repetition: other load seen (bool)
    foreign_cores: list = field(default_factory=list)  # per repetition: average cores used by others
    target_repeats: int = 0
    baseline_rss_mb: float = 0.0
    build_s: float = 0.0
    warmup_s: list = field(default_factory=list)
    log_path: str = ""

    @property
    def clean_times(self) -> list:
        return [t for t, c in zip(self.times, self.contended) if not c]

    @property
    def used_times(self) -> list:
        """Uncontended repetitions if there are at least min(3, target) of them, else all."""
        clean = self.clean_times
        need = min(3, self.target_repeats or len(self.times))
        return clean if clean and len(clean) >= need else self.times

    @property
    def median(self) -> float | None:
        t = self.used_times
        return statistics.median(t) if t else None

    @property
    def peak_mb(self) -> float | None:
        return max(self.peaks_mb) if self.peaks_mb else None

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "config"}
        d["config"] = dict(self.config.__dict__)
        d["median_s"] = self.median
        d["peak_mb"] = self.peak_mb
        return d


class _Child:
    def __init__(self, cfg: Config, spec: dict, log_dir: Path):
        self.cfg = cfg
        env = dict(os.environ)
        for var in THREAD_ENV_VARS:
            env[var] = str(cfg.threads)
        env.update(cfg.env)
        self.log_path = log_dir / f"{cfg.kind}-{cfg.peer}-t{cfg.threads}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "harness.py"), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )
        self.send(spec)

    def send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"child exited with code {self.proc.returncode} (see {self.log_path})")
        return json.loads(line)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send({"cmd": "quit"})
                except (BrokenPipeError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()  # only this child, which we started
                    self.proc.wait()
        finally:
            self._log.close()


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_cpu() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = f[:7]
    steal = f[7] if len(f) > 7 else 0
    return (user + nice + system + irq + softirq) / _CLK_TCK, steal / _CLK_TCK


#: a repetition counts as contended when other processes used more than this
#: many cores on average while it ran (or the hypervisor stole that much)
CONTENTION_CORES = 0.15


def foreign_load(window: float = 1.0) -> float:
    """Cores used by the rest of the machine during ``window`` seconds (this process sleeps meanwhile)."""
    a = _machine_cpu()
    t = time.perf_counter()
    time.sleep(window)
    b = _machine_cpu()
    if not a or not b:
        return 0.0
    return max(0.0, (b[0] - a[0]) / (time.perf_counter() - t))


def wait_quiet(max_wait: float, log: Callable[[str], None] | None = None) -> float:
    """Wait (up to ``max_wait`` s) until other processes use less than CONTENTION_CORES; return the last load seen."""
    deadline = time.perf_counter() + max_wait
    load = foreign_load(0.5)
    while load > CONTENTION_CORES and time.perf_counter() < deadline:
        load = foreign_load(1.0)
    return load


def _tail(path, n=15) -> str:
    try:
        return "".join(Path(path).read_text(errors="replace").splitlines(True)[-n:])
    except OSError:
        return ""


def run_group(
    configs: list[Config],
    image,
    label,
    *,
    repeats: int = 5,
    warmup: int = 1,
    min_rep_seconds: float = 0.0,
    timeout: float = 300.0,
    max_extra_rounds: int | None = None,
    wait_quiet_seconds: float = 0.0,
    log: Callable[[str], None] = print,
    log_dir: str | Path | None = None,
) -> list[Result]:
    """Run the configs (one input, typically one kind) interleaved; return one Result per config."""
    import numpy as np

    if max_extra_rounds is None:
        max_extra_rounds = repeats
    work = Path(tempfile.mkdtemp(prefix="medaug-bench-"))
    log_dir = Path(log_dir) if log_dir else work
    log_dir.mkdir(parents=True, exist_ok=True)
    img_path, lab_path = work / "image.npy", work / "label.npy"
    np.save(img_path, image)
    np.save(lab_path, label)
    results = [Result(cfg) for cfg in configs]
    children: list[_Child | None] = []
    try:
        # start + warm up, one child at a time (the others are idle meanwhile)
        for res in results:
            cfg = res.config
            spec = {
                "threads": cfg.threads,
                "module": cfg.module,
                "builder": cfg.builder,
                "image": str(img_path),
                "label": str(lab_path),
                "warmup": warmup,
                "min_rep_seconds": min_rep_seconds,
                "sys_path": [str(BENCH_DIR)],
            }
            t0 = time.perf_counter()
            child = _Child(cfg, spec, log_dir)
            res.log_path = str(child.log_path)
            try:
                msg = child.receive(timeout * (warmup + 1) + 120)
            except (TimeoutError, RuntimeError) as exc:
                res.status, res.reason = "error", f"{exc}\n{_tail(child.log_path)}"
                child.close()
                children.append(None)
                log(f"  {cfg.kind} {cfg.peer:<16} t={cfg.threads}: FAILED to start: {exc}")
                continue
            if msg["status"] != "ready":
                res.status, res.reason = msg["status"], msg.get("reason", "")
                if msg["status"] == "error":
                    res.reason += "\n" + msg.get("traceback", "")
                child.close()
                children.append(None)
                log(f"  {cfg.kind} {cfg.peer:<16} t={cfg.threads}: {msg['status']}: {msg.get('reason', '')}")
                continue
            res.status = "ready"
            for key in ("version", "notes", "inner", "check", "baseline_rss_mb", "build_s", "warmup_s"):
                setattr(res, key, msg[key])
            children.append(child)
            flag = "" if (res.check or {}).get("ok", False) else f"  CHECK FAILED: {res.check}"
            log(
                f"  {cfg.kind} {cfg.peer:<16} t={cfg.threads}: ready in {time.perf_counter() - t0:.1f} s"
                f" ({res.version}; warm-up {min(res.warmup_s):.3f} s/call, inner={res.inner}){flag}"
            )
        # interleaved rounds; then extra rounds for configs short of clean repetitions
        for res in results:
            res.target_repeats = repeats
        r = 0
        while True:
            live = [i for i, c in enumerate(children) if c is not None]
            if r >= repeats:
                live = [i for i in live if len(results[i].clean_times) < repeats]
                if r >= repeats + max_extra_rounds or not live:
                    break
            if not live:
                break
            order = live[r % len(live):] + live[: r % len(live)]
            for i in order:
                child, res = children[i], results[i]
                if child is None:
                    continue
                if wait_quiet_seconds > 0:
                    wait_quiet(wait_quiet_seconds)
                try:
                    before = _machine_cpu()
                    t_send = time.perf_counter()
                    child.send({"cmd": "run", "seed": r})
                    msg = child.receive(timeout * max(1, res.inner) + 60)
                    wall = time.perf_counter() - t_send
                    after = _machine_cpu()
                except (TimeoutError, RuntimeError, BrokenPipeError, OSError) as exc:
                    res.status, res.reason = "error", f"round {r}: {exc}\n{_tail(child.log_path)}"
                    child.close()
                    children[i] = None
                    log(f"  {res.config.kind} {res.config.peer:<16} t={res.config.threads}: FAILED in round {r}: {exc}")
                    continue
                if msg["status"] != "ok":
                    res.status, res.reason = "error", msg.get("reason", "") + "\n" + msg.get("traceback", "")
                    child.close()
                    children[i] = None
                    log(f"  {res.config.kind} {res.config.peer:<16} t={res.config.threads}: error in round {r}: {msg.get('reason')}")
                    continue
                res.times.append(msg["t"])
                res.peaks_mb.append(msg["peak_mb"])
                res.status = "ok"
                if before and after and "cpu" in msg:
                    wall = max(wall, 1e-6)
                    # /proc/stat counts the whole machine (also processes in other namespaces,
                    # invisible to ps); subtract the child's CPU and allow one clock tick per core
                    foreign = max(0.0, (after[0] - before[0]) - msg["cpu"] - 2.0 / _CLK_TCK) / wall
                    steal = (after[1] - before[1]) / wall
                    res.foreign_cores.append(round(foreign, 3))
                    res.contended.append(foreign > CONTENTION_CORES or steal > CONTENTION_CORES)
                else:
                    res.foreign_cores.append(None)
                    res.contended.append(False)
            n_cont = sum(results[i].contended[-1] for i in order if children[i] is not None and results[i].contended)
            label = f"{r + 1}/{repeats}" if r < repeats else f"extra {r + 1 - repeats}"
            log(f"  round {label} done ({n_cont}/{len(order)} repetitions saw other load)")
            r += 1
    finally:
        for c in children:
            if c is not None:
                c.close()
        for p in (img_path, lab_path):
            try:
                p.unlink()
            except OSError:
                pass
    return results


# ==========================================================================
# summary
# ==========================================================================
def summarize(results: list[Result], references=("bgv2", "floor")) -> list[dict]:
    """One row per result with median, samples/s, peak MB and ratios to the reference peers."""
    ref = {}
    for res in results:
        if res.config.peer in references and res.median:
            ref[(res.config.peer, res.config.kind, res.config.threads)] = res.median
    rows = []
    for res in results:
        c = res.config
        med = res.median
        row = {
            "peer": c.peer,
            "kind": c.kind,
            "threads": c.threads,
            "status": res.status,
            "reason": res.reason.strip().splitlines()[0] if res.reason.strip() else "",
            "version": res.version,
            "notes": res.notes,
            "n": len(res.used_times),
            "n_total": len(res.times),
            "n_clean": len(res.clean_times),
            "inner": res.inner,
            "median_s": med,
            "min_s": min(res.times) if res.times else None,
            "min_used_s": min(res.used_times) if res.times else None,
            "max_s": max(res.used_times) if res.times else None,
            "all_times": res.times,
            "foreign_cores": res.foreign_cores,
            "samples_per_s": (1.0 / med) if med else None,
            "peak_mb": res.peak_mb,
            "baseline_rss_mb": res.baseline_rss_mb,
            "check_ok": (res.check or {}).get("ok"),
            "check": res.check,
        }
        for name in references:
            r = ref.get((name, c.kind, c.threads))
            row[f"ratio_{name}"] = (med / r) if (med and r) else None
        rows.append(row)
    return rows


def _fmt(v, spec):
    return "–" if v is None else format(v, spec)


def format_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s >= 1:
        return f"{s:.2f}"
    return f"{s:.3g}"


def format_mb(mb: float | None) -> str:
    if mb is None:
        return "–"
    return f"{mb:.1f}" if mb < 10 else f"{mb:.0f}"


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| peer | kind | threads | s/sample (median) | spread (min–max) | samples/s | × bgv2 | × floor | peak MB | n |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        if r["median_s"] is None:
            lines.append(f"| {r['peer']} | {r['kind'].upper()} | {r['threads']} | {r['status']}: {r['reason'][:80]} | | | | | | 0 |")
            continue
        flag = "" if r["check_ok"] else " ⚠"
        lines.append(
            f"| {r['peer']}{flag} | {r['kind'].upper()} | {r['threads']} | {format_seconds(r['median_s'])} | "
            f"{format_seconds(r['min_used_s'])}–{format_seconds(r['max_s'])} | "
            f"{_fmt(r['samples_per_s'], '.3g' if r['samples_per_s'] < 100 else '.0f')} | "
            f"{_fmt(r['ratio_bgv2'], '.2f')} | {_fmt(r['ratio_floor'], '.1f')} | {format_mb(r['peak_mb'])} | "
            f"{r['n']}{'' if r['n_clean'] >= r['n'] else '*'}{'×' + str(r['inner']) if r['inner'] > 1 else ''} |"
        )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(_worker())
    print("harness.py is a library; run benchmarks/run.py", file=sys.stderr)
    sys.exit(2)

"""Shared helpers of the fault tests: small datasets, output digests, mounts, subprocess commands."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import medaug
from medaug.datasets.writing import read_manifest as _read_manifest

PIPE = [{"RandomAffine": {"rotation": 8, "translation": 2}}, {"RandomNoise": {"std": [0, 5]}}]
SRC = str(Path(medaug.__file__).resolve().parents[1])


def make_dataset(root: Path, n: int = 4, size: int = 20) -> Path:
    """``root/images`` and ``root/labels`` with ``n`` int16 Shepp-Logan phantoms."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        s = medaug.shepp_logan_3d(size, seed=i)
        medaug.save(s["image"].with_data(s["image"].array.astype("int16")), root / "images" / f"case{i:02d}.nii.gz")
        medaug.save(s["label"], root / "labels" / f"case{i:02d}.nii.gz")
    return root


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file outside ``.medaug/`` (the outputs and the manifest)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".medaug" not in p.parts:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def read_manifest(folder: Path) -> list[dict[str, str]]:
    return _read_manifest(folder / "manifest.csv")


def temp_files(folder: Path) -> list[str]:
    """Temporary or hidden files anywhere in the output except ``.medaug/`` itself and its committed files."""
    bad = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if rel.parts[0] == ".medaug" and len(rel.parts) > 1 and not rel.name.startswith("."):
            continue
        if rel.parts == (".medaug",):
            continue
        if p.name.startswith(".") or ".tmp" in p.name:
            bad.append(str(rel))
    return sorted(bad)


def assert_complete(folder: Path, expected_items: set[tuple[str, int]]) -> None:
    """The manifest lists every expected (case, index) exactly once and every file it names loads."""
    rows = read_manifest(folder)
    keys = [(r["case_id"], int(r["index"])) for r in rows]
    assert len(keys) == len(set(keys)), "an item is listed twice"
    assert set(keys) == expected_items
    named = set()
    for r in rows:
        for col in ("output_image", "output_label"):
            if r[col]:
                named.add(r[col])
                medaug.load(folder / r[col], label=col == "output_label")
    on_disk = {str(p.relative_to(folder)) for sub in ("images", "labels") for p in (folder / sub).glob("*")}
    assert on_disk == named, f"files without a manifest row: {sorted(on_disk - named)}"
    assert temp_files(folder) == []


def medaug_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "medaug.cli", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def try_mount(target: Path, *options: str) -> str | None:
    """Mount a tmpfs on ``target``; None on success, else why not (not root, no CAP_SYS_ADMIN, no mount)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    target.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options) or "defaults", "tmpfs", str(target)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return f"mount not permitted here: {res.stderr.strip() or res.returncode}"
    return None


def remount(target: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(target)], check=True, capture_output=True)


def umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)

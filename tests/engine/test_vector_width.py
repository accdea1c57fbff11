"""The vector width the sweep is compiled for: 512-bit on AVX-512 hosts, unless the user chose, and the same results."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")
llvm = pytest.importorskip("llvmlite.binding")

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")

#: Prints the feature string Numba compiles with after medaug's kernels are imported, then a hash of the outputs
#: of a pipeline whose sweep runs every point-wise operation (gamma, noise, bias field) in 2D and 3D.
_CODE = """
import hashlib, sys, numba, medaug
from medaug.engine import _numba  # noqa: F401  (the kernels' module: the compile set-up runs)
print(repr(numba.config.CPU_FEATURES))
if len(sys.argv) > 1:
    pipe = medaug.pipeline_from_config([
        {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1], "translation": 5}},
        {"RandomElastic": {"control_points": 7, "max_displacement": 7}},
        {"RandomGamma": {"log_gamma": 0.3}},
        {"RandomNoise": {"std": [0.02, 0.02]}},
        {"RandomBiasField": {"order": 3, "coefficients": 0.5}},
    ])
    h = hashlib.sha256()
    for s in (medaug.shepp_logan_2d(96, seed=1), medaug.shepp_logan_3d(40, seed=1)):
        for seed in range(3):
            out = pipe(s, seed=seed)
            h.update(out["image"].array.tobytes())
            h.update(out["label"].array.tobytes())
    print(h.hexdigest())
"""


def _run(*args: str, **env: str) -> list[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "MEDAUG_WIDE_VECTORS")}
    full.update(PYTHONPATH=os.pathsep.join(sys.path), MEDAUG_QUIET="1", **env)
    done = subprocess.run([sys.executable, "-c", _CODE, *args], cwd=_ROOT, env=full, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.skipif(not _AVX512, reason="this CPU has no AVX-512: LLVM's width is kept")
def test_an_avx512_host_compiles_for_512_bit_vectors():
    features = _run()[0]
    assert features.endswith(",-prefer-256-bit'")
    assert "+avx512f" in features.split(",")


@pytest.mark.skipif(_AVX512, reason="this CPU has AVX-512")
def test_a_host_without_avx512_keeps_numbas_choice():
    assert _run() == ["None"]  # repr of an unset CPU_FEATURES


@pytest.mark.parametrize("env", [
    {"MEDAUG_WIDE_VECTORS": "0"},
    {"MEDAUG_WIDE_VECTORS": "off"},
    {"NUMBA_CPU_NAME": "generic"},  # a portable cache: the user's choice is kept
])
def test_the_users_choice_is_kept(env):
    features = _run(**env)[0]
    assert "prefer-256-bit" not in features


def test_numba_compiling_first_keeps_its_code_generator():
    """When another package made Numba's code generator already, medaug cannot (and does not) change its features."""
    code = ("import numba\n@numba.njit\ndef f(x):\n    return x + 1\nf(1)\n"
            "import medaug\nfrom medaug.engine import _jit, _numba\n"
            "print(_jit.prefer_wide_vectors(), numba.config.CPU_FEATURES)")
    full = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    done = subprocess.run([sys.executable, "-c", code], cwd=_ROOT, env={**full, "PYTHONPATH": os.pathsep.join(sys.path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "None"]


@pytest.mark.skipif(not _AVX512, reason="this CPU has no AVX-512: both runs would compile the same code")
def test_the_width_changes_no_output():
    """Bit-identical outputs with 512-bit and with 256-bit vectors (the second run compiles the kernels once)."""
    wide = _run("hash")
    narrow = _run("hash", MEDAUG_WIDE_VECTORS="0")
    assert wide[0].endswith("-prefer-256-bit'") and narrow[0] == "None"
    assert wide[1] == narrow[1]

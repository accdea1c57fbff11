"""Batches: ``pipeline.batch`` gives each sample what a call on it alone gives, in one sweep."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import medaug
from medaug import Image, Sample
from medaug.engine.transform import Context, RandomTransform
from medaug.errors import MedaugError, ParameterError
from medaug.presets import preset, preset_names

STANDARD = [
    {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1], "translation": 5}},
    {"RandomElastic": {"control_points": 7, "max_displacement": 7}},
    {"RandomFlip": {"axes": ["LR"], "p": 0.5}},
    {"RandomGamma": {"log_gamma": 0.3}},
    {"RandomNoise": {"std": [0.02, 0.02]}},
    {"RandomBiasField": {"order": 3, "coefficients": 0.5}},
]


def _same(a: Sample, b: Sample, exact: bool = True) -> None:
    """Same images (bit for bit, or within float rounding), same history."""
    assert list(a) == list(b)
    for name in a:
        x, y = np.asarray(a[name].array), np.asarray(b[name].array)
        assert x.shape == y.shape and x.dtype == y.dtype, name
        if exact or a[name].is_label:
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-4, err_msg=name)
        assert a[name].grid.mismatch(b[name].grid) is None
    strip = [{k: v for k, v in h.items() if k != "resampling"} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k != "resampling"} for h in b.history]
    assert [h.get("resampling", {}).get("fill") for h in a.history] == [h.get("resampling", {}).get("fill") for h in b.history]


def _four_channel(size: int, seed: int) -> Sample:
    s = medaug.shepp_logan_3d(size, seed=seed)
    base = np.asarray(s["image"].array, np.float32)
    data = np.stack([base * (k + 1) + 10 * k for k in range(4)])
    return Sample(image=Image(data, grid=s["image"].grid, channel_names=("a", "b", "c", "d")), label=s["label"])


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_batch_equals_calls_one_by_one(name):
    pipeline = preset(name)
    ndim = 2 if name in ("xray", "ultrasound") else 3
    samples = [medaug.shepp_logan_2d(48, seed=i) if ndim == 2 else medaug.shepp_logan_3d(20, seed=i) for i in range(3)]
    seeds = [11, 12, 13]
    for out, sample, seed in zip(pipeline.batch(samples, seeds=seeds), samples, seeds):
        _same(out, pipeline(sample, seed=seed))


def test_multi_channel_batch_equals_calls_one_by_one():
    pipeline = medaug.pipeline_from_config(STANDARD)
    samples = [_four_channel(24, seed=i) for i in range(3)]
    outs = pipeline.batch(samples, seeds=[0, 1, 2])
    for i, out in enumerate(outs):
        _same(out, pipeline(samples[i], seed=i))
        assert out["image"].channel_names == ("a", "b", "c", "d")


def test_torch_backend_batch_equals_calls_within_rounding():
    pipeline = medaug.pipeline_from_config(STANDARD, backend="torch")
    samples = [medaug.shepp_logan_2d(40, seed=i) for i in range(4)]
    for i, out in enumerate(pipeline.batch(samples, seeds=range(4))):
        _same(out, pipeline(samples[i], seed=i), exact=False)


def test_torch_and_numba_batches_agree():
    samples = [medaug.shepp_logan_3d(20, seed=i) for i in range(2)]
    a = medaug.pipeline_from_config(STANDARD, backend="numba").batch(samples, seeds=[3, 4])
    b = medaug.pipeline_from_config(STANDARD, backend="torch").batch(samples, seeds=[3, 4])
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(y["image"].array), x["image"].array, atol=2e-3, rtol=1e-4)
        np.testing.assert_array_equal(np.asarray(y["label"].array), x["label"].array)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seeds=st.lists(st.integers(0, 2**31), min_size=1, max_size=4), shared_input=st.booleans(),
       spacing=st.floats(0.5, 2.0))
def test_batch_equals_calls_for_any_seeds(seeds, shared_input, spacing):
    pipeline = medaug.pipeline_from_config(STANDARD)
    one = medaug.shepp_logan_2d(32, seed=0)
    samples = []
    for i in range(len(seeds)):
        s = one if shared_input else medaug.shepp_logan_2d(32, seed=i)
        g = s["image"].grid.with_(spacing=(spacing, 1.0))  # one sample per batch may differ in spacing
        samples.append(Sample(image=s["image"].with_data(s["image"].data, g), label=s["label"].with_data(s["label"].data, g)))
    for out, sample, seed in zip(pipeline.batch(samples, seeds=seeds), samples, seeds):
        _same(out, pipeline(sample, seed=seed))


def test_unseeded_batches_record_their_seeds_and_replay():
    pipeline = medaug.pipeline_from_config(STANDARD)
    samples = [medaug.shepp_logan_2d(32, seed=i) for i in range(3)]
    outs = pipeline.batch(samples)
    for out, sample in zip(outs, samples):
        _same(out, pipeline(sample, seed=out.history[0]["run"]["seed"]))


@dataclasses.dataclass
class _FailsOnBad(RandomTransform):
    """Raises for a sample whose metadata says ``bad`` (underscore: kept out of the registry)."""

    p: float = 1.0

    def sample(self, rng: np.random.Generator, ctx: Context):
        if ctx.sample.metadata.get("bad"):
            raise ParameterError("this sample is bad")
        return None


def test_a_bad_sample_is_named_by_position_and_case():
    pipeline = medaug.Compose([_FailsOnBad(), *medaug.pipeline_from_config(STANDARD).transforms])
    samples = [medaug.shepp_logan_2d(24, seed=i) for i in range(4)]
    for i, s in enumerate(samples):
        s.metadata["case_id"] = f"c{i}"
    samples[2].metadata["bad"] = True
    with pytest.raises(ParameterError, match=r"batch sample 2 \(case 'c2'\): this sample is bad"):
        pipeline.batch(samples, seeds=range(4))


def test_mixed_sizes_are_refused_with_the_sample_named():
    pipeline = medaug.pipeline_from_config(STANDARD)
    samples = [medaug.shepp_logan_2d(32), medaug.shepp_logan_2d(32), medaug.shepp_logan_2d(40)]
    with pytest.raises(ParameterError, match=r"batch sample 2 \(case 'phantom-0'\) does not match sample 0: 'image' has size \(40, 40\)"):
        pipeline.batch(samples, seeds=[0, 1, 2])
    with pytest.raises(ParameterError, match="1 seed for 3 samples"):
        pipeline.batch(samples[:3], seeds=[0])
    assert pipeline.batch([], seeds=[]) == []


def test_a_batch_of_views_of_one_input_is_not_copied_per_sample():
    """A batch of one 256x256 image: the extra memory at the peak stays below twice the outputs (inputs read in place)."""
    import tracemalloc

    pipeline = medaug.pipeline_from_config(STANDARD)
    s = medaug.shepp_logan_2d(256)
    samples = [s] * 24
    pipeline.batch(samples[:2], seeds=[0, 1])  # compile and warm up
    tracemalloc.start()
    outs = pipeline.batch(samples, seeds=range(24))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out_bytes = sum(np.asarray(o[n].array).nbytes for o in outs for n in o)
    assert peak <= 2 * out_bytes, (peak, out_bytes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batch_matches_cpu_torch():
    pipeline = medaug.pipeline_from_config(STANDARD, backend="torch")
    cpu = [medaug.shepp_logan_3d(24, seed=i) for i in range(3)]
    gpu = [Sample(**{k: v.with_data(v.tensor.cuda()) for k, v in s.items()}) for s in cpu]
    for a, b in zip(pipeline.batch(cpu, seeds=[0, 1, 2]), pipeline.batch(gpu, seeds=[0, 1, 2])):
        np.testing.assert_allclose(b["image"].array, a["image"].array, atol=1e-3, rtol=1e-4)
        np.testing.assert_array_equal(b["label"].array, a["label"].array)


def test_errors_keep_their_type():
    pipeline = medaug.Compose([_FailsOnBad()])
    bad = medaug.shepp_logan_2d(16)
    bad.metadata["bad"] = True
    with pytest.raises(MedaugError) as info:
        pipeline.batch([medaug.shepp_logan_2d(16), bad], seeds=[0, 1])
    assert isinstance(info.value, ParameterError) and info.value.batch_index == 1  # type: ignore[attr-defined]


def test_step_wise_intensity_on_small_images_runs_on_one_thread(monkeypatch):
    import importlib


    ex = importlib.import_module("medaug.engine.execute")
    seen = []
    real = ex._apply_intensity

    def spy(cur, t):
        seen.append(torch.get_num_threads())
        return real(cur, t)

    monkeypatch.setattr(ex, "_apply_intensity", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pipeline = medaug.pipeline_from_config([{"RandomBlur": {"std": [1, 1]}}])
        pipeline(medaug.shepp_logan_2d(32), seed=0)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

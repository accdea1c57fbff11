"""The transform gallery of the documentation: a page entry and a picture per transform, made when the docs are built.

Every transform of the catalog (:mod:`medaug.presets.catalog`) gets an entry:
what it does, its parameters (type, default, unit, allowed values), the
presets and modalities that use it, the rules of each modality that limit it,
the configuration pictured, and a picture (:func:`medaug.preview.figures.preview`):
the input with its label contours, the output, and for spatial transforms a
grid warped by the same map.  The pictured sample is one of
:func:`gallery_samples`, chosen by the modality that uses the transform.

``docs/gen_pages.py`` calls :func:`write_gallery` during ``mkdocs build``; the
tests call it on a temporary folder, so nothing generated is committed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..data.grid import Grid
from ..data.image import Image
from ..data.phantoms import shepp_logan_2d, shepp_logan_3d
from ..data.sample import Sample
from ..engine.config import pipeline_from_config
from ..presets.catalog import Entry, transform_entries
from ..presets.constraints import MODALITIES
from ..presets.examples import example_parameters, write_example_field

__all__ = ["gallery_samples", "gallery_sample_for", "write_gallery", "PAGES"]

#: Gallery page (file stem) -> (title, kinds of transform it shows).
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "spatial": ("Spatial transforms", ("spatial",)),
    "intensity": ("Intensity transforms", ("intensity",)),
    "groups": ("Groups", ("group", "other")),
}
#: Transforms pictured on another modality than the first that uses them (its signature use).
_SHOWN_ON = {"RandomContrast": "ultrasound", "Contrast": "ultrasound"}
_TITLES = {"ct": "CT phantom (HU)", "mri": "real T1 MRI (nibabel's anatomical.nii)",
           "xray": "X-ray-like projection of the phantom", "ultrasound": "ultrasound-like phantom with speckle"}
#: Largest displacement of the pictured stored fields (mm): visible, and far from folding.
_FIELD_MM = 4.0
#: Display windows: the CT phantom's brain window (HU) shows intensity changes of a few HU.
_WINDOWS: dict[str, tuple[float, float] | None] = {"ct": (-20.0, 100.0), "mri": None, "xray": None, "ultrasound": None}


def gallery_samples() -> dict[str, Sample]:
    """One small sample per modality, each with a label map.

    * ``ct``: the 2D head phantom (:func:`~medaug.data.phantoms.shepp_logan_2d`, HU, 96 x 96, labels 0-4);
    * ``mri``: nibabel's real 3D T1 MR (:func:`~medaug.data.sample_data.anatomical_mri`,
      33 x 41 x 25 voxels of 2 mm) with the bright tissue (Otsu's threshold after a 1-voxel Gaussian, largest part) as label;
    * ``xray``: a radiograph-like 2D projection of the 3D phantom (attenuation
      summed along AP, 64 x 64), with the projected labels;
    * ``ultrasound``: the 2D phantom as echogenicity (fluid dark, bone bright)
      times Rayleigh speckle, 96 x 96.

    Returns
    -------
    dict of str to Sample
        By modality; ``metadata["modality"]`` is set.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    from ..data.sample_data import anatomical_mri

    ct = shepp_logan_2d(96, seed=0)
    mri_image = anatomical_mri()
    tissue = ndimage.gaussian_filter(mri_image.array.astype(np.float32), 1.0)
    tissue = ndimage.binary_opening(tissue > threshold_otsu(tissue))
    parts, count = ndimage.label(tissue)
    largest = np.argmax(np.bincount(parts.ravel())[1:]) + 1 if count else 0
    head = (parts == largest).astype(np.uint8)
    mri = Sample(image=mri_image, label=Image(head, grid=mri_image.grid, is_label=True),
                 metadata={"modality": "mri", "case_id": "anatomical_mri"})
    volume = shepp_logan_3d(64, seed=0)
    mu = np.clip(volume.image.array + 1000.0, 0.0, None) / 1000.0  # attenuation relative to water
    grid2 = Grid((64, 64), spacing=volume.grid.spacing[::2])
    xray = Sample(image=Image(mu.sum(axis=1).astype(np.float32), grid=grid2),
                  label=Image(volume.label.array.max(axis=1), grid=grid2, is_label=True),
                  metadata={"modality": "xray", "case_id": "xray_like"})
    echo = np.array([0.05, 1.0, 0.45, 0.08, 0.8], np.float32)[ct.label.array]
    speckle = np.random.default_rng(0).rayleigh(1.0, echo.shape).astype(np.float32)
    ultrasound = Sample(image=Image(echo * speckle, grid=ct.grid), label=ct.label,
                       metadata={"modality": "ultrasound", "case_id": "ultrasound_like"})
    return {"ct": ct, "mri": mri, "xray": xray, "ultrasound": ultrasound}


def gallery_sample_for(entry: Entry) -> str:
    """The modality whose sample pictures ``entry``: the first whose presets use it (or its ``RandomX``),
    else the first whose rules allow it."""
    if entry.name in _SHOWN_ON:
        return _SHOWN_ON[entry.name]
    entries = transform_entries()
    for e in (entry, entries.get("Random" + entry.name)):
        if e is not None and e.modalities:
            return e.modalities[0]
    return next((m for m in MODALITIES if entry.verdict(m).status in ("allowed", "limited")), "ct")


def write_gallery(folder: str | Path, *, names: Iterable[str] | None = None, seed: int = 0) -> dict[str, Path]:
    """Write the gallery's pages (``index.md`` and one per :data:`PAGES`) and pictures (``img/NAME.png``).

    Parameters
    ----------
    folder : str or Path
        Output folder (created).
    names : iterable of str, optional
        Only these transforms (default: every transform of the catalog).
    seed : int
        Seed of the pictured draws.

    Returns
    -------
    dict of str to Path
        The picture of each transform, by name.
    """
    from .figures import preview

    out = Path(folder)
    (out / "img").mkdir(parents=True, exist_ok=True)
    entries = transform_entries()
    chosen = [entries[n] for n in (sorted(names) if names is not None else entries)]
    samples = gallery_samples()
    fields = {m: str(write_example_field(out / f"field_{m}.nii.gz", _field_grid(s.grid), amplitude=_FIELD_MM))
              for m, s in samples.items()}
    pictures: dict[str, Path] = {}
    sections: dict[str, list[str]] = {page: [] for page in PAGES}
    for entry in chosen:
        modality = gallery_sample_for(entry)
        sample = samples[modality]
        params = example_parameters(entry.name, sample.grid.ndim, fields[modality], sample.grid) or {}
        result = pipeline_from_config([{entry.name: params}])(sample, seed=seed)
        pictures[entry.name] = preview(
            sample, [result], out / "img" / f"{entry.name}.png", modality=modality, window=_WINDOWS[modality],
            deformation=entry.kind in ("spatial", "group"), title=entry.name,
        )
        shown = {k: ("FIELD.nii.gz" if v == fields[modality] else v) for k, v in params.items()}
        if entry.name == "RandomLearnedDeformation":
            shown["fields"] = ["FIELD.nii.gz"]
        sections[_page_of(entry)].append(_entry_markdown(entry, shown, modality))
    for f in fields.values():
        Path(f).unlink()
    for page, (title, _) in PAGES.items():
        (out / f"{page}.md").write_text(f"# {title}\n\n" + "\n".join(sections[page]), encoding="utf-8")
    (out / "index.md").write_text(_index_markdown(chosen), encoding="utf-8")
    return pictures


def _field_grid(grid: Grid) -> Grid:
    """A 16-point-per-axis grid covering ``grid``'s physical bounding box with a 10 % margin."""
    corners = grid.corners()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    margin = 0.1 * (hi - lo) + 1.0
    return Grid((16,) * grid.ndim, spacing=((hi - lo + 2 * margin) / 15)[::-1].tolist()[::-1],
                origin=(lo - margin).tolist())


def _page_of(entry: Entry) -> str:
    return next(page for page, (_, kinds) in PAGES.items() if entry.kind in kinds)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _entry_markdown(entry: Entry, params: dict, modality: str) -> str:
    lines = [f"## {entry.name}", ""]
    facts = [entry.kind, "random" if entry.random else "deterministic",
             f"used by presets: {', '.join(entry.presets)}" if entry.presets else "in no preset"]
    lines += [f"*{' · '.join(facts)}*", "", entry.summary, ""]
    if entry.parameters:
        lines += ["| parameter | type | default | unit | allowed | meaning |", "|---|---|---|---|---|---|"]
        for p in entry.parameters:
            default = "required" if p.required else f"`{json.dumps(p.default)}`"
            lines.append(f"| `{p.name}` | {_cell(p.type)} | {default} | {p.unit} | {_cell(p.allowed)} | {_cell(p.description)} |")
        lines.append("")
    lines.append("**Modality rules** (`medaug check`, `medaug transforms " + entry.name + " --modality M`):")
    lines.append("")
    for m in MODALITIES:
        verdict = entry.verdict(m)
        limits = "; ".join(verdict.limits)
        lines.append(f"- {m}: **{verdict.status}**" + (f" — {limits}" if limits else ""))
    lines += ["", f"Pictured: `{json.dumps({entry.name: params})}` on the {_TITLES[modality]}.", "",
              f"![{entry.name}](img/{entry.name}.png)", ""]
    return "\n".join(lines)


def _index_markdown(entries: list[Entry]) -> str:
    lines = ["# Transform gallery", "",
             "Every transform a pipeline configuration can name, with a picture made when this site was built "
             "by running it on the shipped sample data (label contours in colour; spatial transforms also "
             "show a grid warped by the same map). `medaug transforms [NAME] [--modality M]` prints the same "
             "facts.", "", "| transform | kind | what it does | presets |", "|---|---|---|---|"]
    for e in entries:
        page = _page_of(e)
        anchor = e.name.lower()
        lines.append(f"| [{e.name}]({page}.md#{anchor}) | {e.kind} | {_cell(e.summary)} | {', '.join(e.presets)} |")
    return "\n".join(lines) + "\n"

"""Medical constraints: what each modality allows, and the checks that enforce it.

Each modality has a set of rules.  A rule either prohibits a transform (it
breaks the physics of the modality: intensity scaling on CT destroys
Hounsfield units, speckle belongs to ultrasound), or bounds one parameter (a
CT rotation beyond 10° is not a plausible patient position).  Rules carry a
severity, ``error`` or ``warning``, and a reason a user can act on.

:func:`check_pipeline` reports every violation of a pipeline;
:func:`enforce` raises :class:`~medaug.errors.UnsafePipelineError` on errors
(or on anything, when strict) and warns on the rest.  After augmentation,
:func:`output_range_check` confirms that the output stays within the
modality's valid intensity range.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

from ..engine.compose import Compose
from ..engine.ranges import Range
from ..engine.registry import set_constraint_checker
from ..engine.transform import _Base
from ..errors import ParameterError, UnsafePipelineError, did_you_mean

__all__ = ["Rule", "Violation", "MODALITIES", "RULES", "VALID_RANGE", "NOISE_KIND_RULES", "canonical_modality", "check_pipeline", "enforce", "output_range_check", "UnsafePipelineWarning"]

Severity = Literal["error", "warning"]
MODALITIES = ("ct", "mri", "xray", "ultrasound")


class UnsafePipelineWarning(UserWarning):
    """A pipeline breaks a soft medical constraint (a rule of severity ``warning``)."""


@dataclass(frozen=True)
class Rule:
    """One constraint of a modality.

    Attributes
    ----------
    transform : str
        Config name of the random transform the rule applies to.
    parameter : str or None
        The bounded parameter, or None when the transform itself is prohibited.
    limit : float or None
        Largest allowed magnitude (see ``measure``).
    measure : str
        How the parameter's magnitude is read: ``abs`` (largest |value| of a
        range, e.g. degrees), ``deviation`` (largest |value - 1|, for scale),
        ``upper`` (largest value).
    severity : {"error", "warning"}
    reason : str
        The radiological reason, shown to the user.
    """

    transform: str
    parameter: str | None
    limit: float | None
    measure: str
    severity: Severity
    reason: str


@dataclass(frozen=True)
class Violation:
    severity: Severity
    transform: str
    parameter: str | None
    value: float | None
    limit: float | None
    rule: str
    modality: str

    def __str__(self) -> str:
        if self.parameter is None:
            return f"{self.transform}: not allowed for {self.modality.upper()} ({self.rule})"
        return (
            f"{self.transform}.{self.parameter} = {self.value:g} exceeds the {self.modality.upper()} limit "
            f"{self.limit:g} ({self.rule})"
        )


def _r(transform, parameter, limit, measure, severity, reason) -> Rule:
    return Rule(transform, parameter, limit, measure, severity, reason)


# k-space artefacts exist only in MRI: every other modality refuses them
_MRI_ONLY = [
    _r("RandomMotion", None, None, "abs", "error", "k-space motion is an MRI artefact"),
    _r("RandomGhosting", None, None, "abs", "error", "ghosting is an MRI artefact"),
    _r("RandomSpike", None, None, "abs", "error", "spike noise is an MRI artefact"),
]

_GEOMETRY_CT = [
    _r("RandomAffine", "rotation", 10.0, "abs", "error", "patient positioning on a CT table varies by a few degrees; > 10° is not realistic"),
    _r("RandomAffine", "scale", 0.10, "deviation", "error", "CT is calibrated in mm; zoom beyond ±10 % changes apparent organ size implausibly"),
    _r("RandomAffine", "translation_fraction", 0.10, "abs", "error", "translation beyond 10 % of the field of view moves anatomy out of a typical FOV"),
    _r("RandomAffine", "translation", 25.0, "abs", "warning", "translations in mm above 25 mm exceed 10 % of a head FOV; prefer translation_fraction"),
    _r("RandomAffine", "shear", 0.05, "abs", "error", "CT geometry is rigid; shear above 0.05 distorts anatomy"),
    _r("RandomElastic", "max_displacement", 10.0, "upper", "error", "soft-tissue deformation beyond 10 mm is not realistic for CT"),
    _r("RandomElastic", "alpha", 10.0, "upper", "error", "soft-tissue deformation beyond 10 mm is not realistic for CT"),
    _r("RandomRadialDistortion", None, None, "abs", "error", "CT has no lens; radial distortion is not a CT artefact"),
]
_INTENSITY_CT = [
    _r("RandomContrast", None, None, "abs", "error", "arbitrary intensity scaling destroys Hounsfield units"),
    _r("RandomBrightness", None, None, "abs", "error", "an intensity offset shifts every tissue's HU (water is 0 HU by definition)"),
    _r("RandomHistogramShift", None, None, "abs", "error", "a non-linear intensity curve destroys Hounsfield units"),
    _r("RandomGamma", None, None, "abs", "warning", "gamma changes HU non-linearly; use it only on windowed, normalised inputs"),
    _r("RandomBiasField", None, None, "abs", "error", "bias fields are an MRI artefact; CT has none"),
    _r("RandomGaussianField", None, None, "abs", "warning", "smooth intensity fields are an MRI/ultrasound artefact"),
    *_MRI_ONLY,
    _r("RandomGibbs", None, None, "abs", "warning", "Gibbs ringing is mainly an MRI artefact"),
    _r("RandomNoise", "std", 40.0, "upper", "error", "CT quantum noise is 5-40 HU; more is not a diagnostic scan"),
    _r("RandomCLAHE", None, None, "abs", "error", "CLAHE remaps intensities and destroys Hounsfield units"),
]
_MRI = [
    _r("RandomAffine", "rotation", 15.0, "abs", "error", "head position in an MRI coil varies by < 15°"),
    _r("RandomAffine", "scale", 0.15, "deviation", "error", "MRI is calibrated in mm; zoom beyond ±15 % is implausible"),
    _r("RandomAffine", "translation_fraction", 0.10, "abs", "error", "translation beyond 10 % of the field of view is implausible"),
    _r("RandomElastic", "max_displacement", 10.0, "upper", "error", "deformation beyond 10 mm is not realistic"),
    _r("RandomElastic", "alpha", 10.0, "upper", "error", "deformation beyond 10 mm is not realistic"),
    _r("RandomRadialDistortion", None, None, "abs", "warning", "radial lens distortion is not an MRI artefact (gradient non-linearity is milder)"),
    _r("RandomGamma", "log_gamma", 0.4, "abs", "error", "stronger gamma changes sequence contrast beyond its range"),
    _r("RandomContrast", "scale", 0.3, "deviation", "warning", "contrast scaling beyond ±30 % leaves the sequence's range"),
    _r("RandomHistogramShift", None, None, "abs", "warning", "non-linear curves may invert tissue contrast; keep them mild"),
    _r("RandomCLAHE", None, None, "abs", "warning", "CLAHE is a display enhancement, not an acquisition variation"),
]
_XRAY = [
    _r("RandomAffine", "rotation", 15.0, "abs", "error", "radiographs are positioned within a few degrees; > 15° is a large geometric distortion"),
    _r("RandomAffine", "scale", 0.15, "deviation", "error", "magnification varies by < 15 % with source distance"),
    _r("RandomAffine", "translation_fraction", 0.10, "abs", "error", "translation beyond 10 % of the field of view crops anatomy"),
    _r("RandomElastic", "max_displacement", 5.0, "upper", "error", "radiographs are projections of rigid anatomy; only mild elastic change is plausible"),
    _r("RandomElastic", "alpha", 5.0, "upper", "error", "radiographs are projections of rigid anatomy; only mild elastic change is plausible"),
    _r("RandomRadialDistortion", "k1", 0.15, "abs", "error", "C-arm image-intensifier distortion is mild"),
    *_MRI_ONLY,
    _r("RandomBiasField", None, None, "abs", "warning", "polynomial bias fields model MRI coils; use RandomGaussianField for heel effect"),
]
_US = [
    _r("RandomAffine", "rotation", 15.0, "abs", "error", "probe angle varies, but > 15° changes the acoustic view"),
    _r("RandomAffine", "scale", 0.15, "deviation", "error", "depth calibration varies by < 15 %"),
    _r("RandomAffine", "translation_fraction", 0.10, "abs", "error", "translation beyond 10 % of the field of view is implausible"),
    _r("RandomElastic", "max_displacement", 10.0, "upper", "error", "probe pressure deforms tissue by a few mm"),
    *_MRI_ONLY,
    _r("RandomBlur", "std", 1.0, "upper", "warning", "blur beyond 1 mm removes speckle, which carries diagnostic texture"),
]

RULES: dict[str, list[Rule]] = {"ct": _GEOMETRY_CT + _INTENSITY_CT, "mri": _MRI, "xray": _XRAY, "ultrasound": _US}

#: Valid output intensity range per modality: absolute (CT, in HU), or relative to the input's
#: range ``R``: ``[min - m R, max + m R]`` with margin ``m`` (MRI, X-ray and ultrasound have no absolute units).
VALID_RANGE: dict[str, tuple[str, float, float]] = {
    "ct": ("absolute", -1024.0, 3071.0),
    "mri": ("relative", 0.5, 0.5),
    "xray": ("relative", 0.25, 0.25),
    "ultrasound": ("relative", 0.25, 0.5),
}

#: Noise kinds each modality refuses in RandomNoise (kind -> reason).
NOISE_KIND_RULES: dict[str, dict[str, str]] = {
    "ct": {"speckle": "speckle is an ultrasound artefact", "rician": "Rician noise belongs to magnitude MRI"},
    "xray": {"speckle": "speckle is an ultrasound artefact", "rician": "Rician noise belongs to magnitude MRI"},
    "mri": {"speckle": "speckle is an ultrasound artefact", "salt_pepper": "salt-and-pepper is not an MRI noise model"},
    "ultrasound": {"rician": "Rician noise belongs to magnitude MRI"},
}


def _magnitude(value: Any, measure: str, name: str) -> float:
    """Largest magnitude of a parameter given as a number, a range, or per-axis ranges."""
    if value is None:
        return 0.0
    if measure == "deviation":
        return max(max(abs(lo - 1.0), abs(hi - 1.0)) for lo, hi in _readings(value, name, anchor=1.0))
    ranges = _readings(value, name, anchor=0.0)
    if measure == "abs":
        return max(max(abs(lo), abs(hi)) for lo, hi in ranges)
    return max(hi for _, hi in ranges)


def _readings(value: Any, name: str, anchor: float) -> list[tuple[float, float]]:
    """Every range ``value`` holds, read as the transforms read it (:meth:`Range.per_axis`).

    A value may be written for every axis or per axis of a 2D or 3D image (or
    per shear factor); each spelling that fits is read, so the largest
    magnitude of any of them is checked.  One number ``d`` reads as
    ``(anchor - d, anchor + d)``: its magnitude is ``d`` as the rules mean it.
    """
    reader = Range("symmetric", anchor=anchor)
    found: list[tuple[float, float]] = []
    for n in (1, 2, 3, 6):
        try:
            found += reader.per_axis(value, name, n)
        except ParameterError:
            continue  # not a spelling for n axes
    if not found:
        raise ParameterError(f"'{name}' is not a range or one range per axis: {value!r}")
    return found


def check_pipeline(pipeline: Compose, modality: str) -> list[Violation]:
    """Every violation of ``modality``'s rules by the transforms of ``pipeline``.

    Raises
    ------
    ParameterError
        For an unknown modality.
    """
    modality = canonical_modality(modality)
    rules = RULES[modality]
    found: list[Violation] = []
    for t in pipeline.walk():
        name = type(t).__name__
        for rule in rules:
            if rule.transform != name and not (isinstance(t, _Base) and _is_subclass_named(t, rule.transform)):
                continue
            if rule.parameter is None:
                found.append(Violation(rule.severity, name, None, None, None, rule.reason, modality))
                continue
            value = getattr(t, rule.parameter, None)
            mag = _magnitude(value, rule.measure, rule.parameter)
            if rule.limit is not None and mag > rule.limit + 1e-12:
                found.append(Violation(rule.severity, name, rule.parameter, mag, rule.limit, rule.reason, modality))
        kind = getattr(t, "kind", None)
        if name == "RandomNoise" and kind in NOISE_KIND_RULES.get(modality, {}):
            found.append(Violation("error", name, "kind", None, None, f"kind '{kind}': {NOISE_KIND_RULES[modality][kind]}", modality))
    return found


def _is_subclass_named(t: Any, name: str) -> bool:
    return any(c.__name__ == name for c in type(t).__mro__[1:])


def canonical_modality(modality: str) -> str:
    """The canonical name of ``modality`` (``"MR"`` -> ``"mri"``, ``"CR"`` -> ``"xray"``).

    Raises
    ------
    ParameterError
        For an unknown modality, naming the known ones.
    """
    m = str(modality).lower().replace("-", "").replace("_", "")
    m = {"xr": "xray", "cr": "xray", "dx": "xray", "mr": "mri", "us": "ultrasound"}.get(m, m)
    if m not in RULES:
        raise ParameterError(f"unknown modality '{modality}'{did_you_mean(m, RULES)}; choose one of {', '.join(MODALITIES)}")
    return m


def enforce(pipeline: Compose, modality: str, *, on_violation: Literal["error", "warn", "strict"] = "error") -> list[Violation]:
    """Check ``pipeline`` and act: raise on errors, warn on warnings.

    Parameters
    ----------
    on_violation : {"error", "warn", "strict"}
        ``error``: errors raise :class:`UnsafePipelineError`, warnings warn.
        ``warn``: everything only warns.  ``strict``: warnings raise too.
    """
    if on_violation not in ("error", "warn", "strict"):
        raise ParameterError(f"on_violation must be error, warn or strict, got {on_violation!r}")
    found = check_pipeline(pipeline, modality)
    fatal = [v for v in found if v.severity == "error" or on_violation == "strict"]
    if fatal and on_violation != "warn":
        lines = "; ".join(str(v) for v in fatal)  # one line: the CLI prints every error as one line
        raise UnsafePipelineError(f"pipeline violates {len(fatal)} {modality.upper()} constraint(s): {lines}")
    for v in found:
        if v not in fatal or on_violation == "warn":
            warnings.warn(str(v), UnsafePipelineWarning, stacklevel=2)
    return found


def output_range_check(
    modality: str, values: dict[str, tuple[float, float]], inputs: dict[str, tuple[float, float]] | None = None
) -> dict[str, Any]:
    """Compare each output image's (min, max) with the modality's valid range; returns a history record.

    Parameters
    ----------
    values : dict
        Output (min, max) per image name.
    inputs : dict, optional
        Input (min, max) per image name, for the modalities whose range is relative.
    """
    mod = canonical_modality(modality)
    kind, a, b = VALID_RANGE[mod]
    report: dict[str, Any] = {}
    ok = True
    for name, (vmin, vmax) in values.items():
        if kind == "absolute":
            lo, hi = a, b
        else:
            imin, imax = (inputs or {}).get(name, (vmin, vmax))
            span = max(imax - imin, 1e-6)
            lo, hi = imin - a * span, imax + b * span
        inside = vmin >= lo - 1e-3 and vmax <= hi + 1e-3
        ok = ok and inside
        report[name] = {"min": float(vmin), "max": float(vmax), "valid": [float(lo), float(hi)], "within": bool(inside)}
    return {"name": "OutputRangeCheck", "check": True, "params": {"modality": mod, "images": report, "ok": ok}}


class _Checker:
    """The constraints as the engine's :class:`~medaug.engine.registry.ConstraintChecker`."""

    canonical = staticmethod(canonical_modality)
    enforce = staticmethod(enforce)
    output_range_check = staticmethod(output_range_check)


set_constraint_checker(_Checker())

"""One description of every transform a configuration can name, for ``medaug transforms`` and the docs' gallery.

An :class:`Entry` tells what a transform does (its docstring's summary), its
parameters (:class:`Parameter`: type, default, unit, allowed values, meaning),
its kind (spatial, intensity, group), the presets that use it and, per
modality, the rules of :mod:`medaug.presets.constraints` that limit it
(:meth:`Entry.verdict`).  Nothing here is written twice: the summary and the
parameter meanings come from the NumPy docstrings, defaults from the class,
and the allowed values from the transform's own validation (each parameter is
tried with an out-of-range value and the bound its error names is read back),
so the catalog cannot drift from the code.

>>> entry = transform_entry("RandomAffine")
>>> entry.kind, "ct" in entry.presets
('spatial', True)
>>> rotation = entry.parameter("rotation")
>>> rotation.allowed, rotation.unit
('[-360, 360]', 'degrees')
>>> entry.verdict("ct").status
'limited'
>>> transform_entry("RandomMotion").verdict("ct").status
'not allowed'
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..engine.compose import Compose
from ..engine.registry import renamed, transform_classes
from ..engine.transform import IntensityTransform, RandomIntensityTransform, SpatialTransform, to_jsonable
from ..errors import ParameterError
from . import PRESETS
from .constraints import MODALITIES, NOISE_KIND_RULES, RULES, Rule, canonical_modality

__all__ = [
    "Parameter", "Entry", "Verdict", "Kind", "transform_entries", "transform_entry", "close_names", "docstring_parameters",
    "plain",
]

Kind = Literal["spatial", "intensity", "group", "other"]
Status = Literal["allowed", "limited", "discouraged", "not allowed"]

#: Unit -> the words that name it in a parameter's description; the first unit found wins.
_UNITS: dict[str, tuple[str, ...]] = {
    "mm": ("mm",), "degrees": ("degrees", "°"), "image units": ("image units", "image's units", "HU"),
    "fraction": ("fraction",), "voxels": ("voxels",),
}
#: A bound as the range readers word it: ``... must lie in [0, 500] mm, got ...``.
_BOUND = re.compile(r" in ([\[(])([^,\]]+), ([^\]]+)\]([^,]*), got")
#: Values that break every bound a parameter may have: huge, huge negative, a huge range, a huge count.
_PROBES: tuple[Any, ...] = (1e300, -1e300, [-1e300, 1e300], 10**9)
#: Bounds this wide mean "any finite number" (:data:`medaug.engine.ranges.INTENSITY`).
_ANY = 1e29


@dataclass(frozen=True)
class Parameter:
    """One parameter of a transform.

    Attributes
    ----------
    name : str
        As written in a configuration.
    type : str
        As the docstring writes it (``float or [min, max]``), else the annotation.
    default : Any
        JSON-ready default; ``None`` also when the parameter is required (see ``required``).
    required : bool
        The transform cannot be built without it.
    unit : str
        ``mm``, ``degrees``, ``image units`` (HU for CT), ``voxels``, ``fraction`` or ``""``
        (a factor, a count, a name); only for parameters with a bound.
    allowed : str
        The values the transform accepts, e.g. ``[0, 500]`` or ``(0, 1]``; ``""`` when
        not a bounded number (a name, a choice, a file).
    description : str
        The docstring's text for it, on one line.
    """

    name: str
    type: str
    default: Any
    required: bool
    unit: str
    allowed: str
    description: str


@dataclass(frozen=True)
class Verdict:
    """What a modality's rules say about a transform.

    Attributes
    ----------
    modality : str
        Canonical modality name (``ct``, ``mri``, ``xray``, ``ultrasound``).
    status : {"allowed", "limited", "discouraged", "not allowed"}
        ``not allowed``: a rule of severity error prohibits the transform;
        ``discouraged``: a warning rule does; ``limited``: rules bound some
        parameters (or values); ``allowed``: no rule names it.
    limits : list of str
        One line per rule, e.g. ``rotation <= 10 (error: ...)``.
    """

    modality: str
    status: Status
    limits: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """A registered transform as the catalog describes it."""

    name: str
    summary: str
    kind: Kind
    random: bool
    parameters: tuple[Parameter, ...]
    presets: tuple[str, ...]
    module: str
    rules: Mapping[str, tuple[Rule, ...]] = dataclasses.field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities of the presets that use this transform, in :data:`MODALITIES` order."""
        used = {PRESETS[p][0] for p in self.presets}
        return tuple(m for m in MODALITIES if m in used)

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``.

        Raises
        ------
        ParameterError
            When the transform has no such parameter (naming the ones it has).
        """
        for p in self.parameters:
            if p.name == name:
                return p
        raise ParameterError(f"{self.name} has no parameter '{name}'; it has: {', '.join(p.name for p in self.parameters)}")

    def verdict(self, modality: str) -> Verdict:
        """Whether ``modality``'s rules allow this transform, and the limits they set.

        Raises
        ------
        ParameterError
            For an unknown modality.
        """
        m = canonical_modality(modality)
        rules = self.rules.get(m, ())
        limits = [_rule_text(r) for r in rules]
        kinds = NOISE_KIND_RULES.get(m, {}) if self.name == "RandomNoise" else {}
        limits += [f"kind '{k}' not allowed (error: {why})" for k, why in kinds.items()]
        banned = [r for r in rules if r.parameter is None]
        status: Status
        if any(r.severity == "error" for r in banned):
            status = "not allowed"
        elif banned:
            status = "discouraged"
        elif limits:
            status = "limited"
        else:
            status = "allowed"
        return Verdict(m, status, tuple(limits))


def _rule_text(rule: Rule) -> str:
    if rule.parameter is None:
        return f"{'not allowed' if rule.severity == 'error' else 'discouraged'} ({rule.severity}: {rule.reason})"
    measure = {"abs": f"|{rule.parameter}|", "deviation": f"|{rule.parameter} - 1|", "upper": rule.parameter}
    return f"{measure.get(rule.measure, rule.parameter)} <= {rule.limit:g} ({rule.severity}: {rule.reason})"


def transform_entries() -> dict[str, Entry]:
    """Every transform a configuration can name, by name (sorted).

    Transforms registered by :mod:`medaug.interop` wrap Python objects of another
    library and cannot be written in a configuration; they are left out.
    """
    return dict(_entries())


def transform_entry(name: str) -> Entry:
    """The entry of the transform called ``name``.

    Raises
    ------
    ParameterError
        For an unknown name: says its new name when it was renamed, else the closest names.
    """
    entries = _entries()
    if name in entries:
        return entries[name]
    new = renamed(name)
    if new is not None:
        hint = f" (renamed '{new}' in medaug 0.2.0; see CHANGELOG.md)"
    else:
        close = close_names(name, entries)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    raise ParameterError(f"unknown transform '{name}'{hint}; run 'medaug transforms' for the list")


def close_names(word: str, names: Iterator[str] | Mapping[str, Any] | list[str], n: int = 3) -> list[str]:
    """Up to ``n`` names closest to ``word``, ignoring case (:func:`difflib.get_close_matches`)."""
    by_lower = {str(c).lower(): str(c) for c in names}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), n=n, cutoff=0.75)
    return [by_lower[c] for c in close]


@functools.lru_cache(maxsize=1)
def _entries() -> dict[str, Entry]:
    used = _preset_use()
    out = {}
    for name, cls in sorted(transform_classes().items()):
        if name.startswith("_") or cls.__module__.startswith("medaug.interop"):
            continue
        rules = {m: tuple(r for r in RULES[m] if r.transform in _names_of(cls)) for m in MODALITIES}
        out[name] = Entry(
            name=name, summary=_summary(cls), kind=_kind(cls), random=_is_random(cls),
            parameters=tuple(_parameters(cls)), presets=tuple(used.get(name, ())), module=cls.__module__,
            rules={m: r for m, r in rules.items() if r},
        )
    return out


def _names_of(cls: type) -> set[str]:
    """The class's name and its bases' (a rule for ``RandomAffine`` also limits ``RandomRotation``)."""
    return {c.__name__ for c in cls.__mro__}


def _kind(cls: type) -> Kind:
    if issubclass(cls, Compose):
        return "group"
    if issubclass(cls, SpatialTransform) or cls.__module__.startswith("medaug.spatial"):
        return "spatial"
    if issubclass(cls, (IntensityTransform, RandomIntensityTransform)) or cls.__module__.startswith("medaug.intensity"):
        return "intensity"
    return "other"


def _is_random(cls: type) -> bool:
    from ..engine.transform import RandomTransform

    return issubclass(cls, RandomTransform)


def _preset_use() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for preset_name, (_, _, config, _) in PRESETS.items():
        for name in _config_names(config):
            if preset_name not in used.setdefault(name, []):
                used[name].append(preset_name)
    return used


def _config_names(items: list[Any]) -> Iterator[str]:
    for item in items:
        ((name, params),) = (item.items() if isinstance(item, Mapping) else [(item, {})])
        yield name
        if isinstance(params, Mapping) and isinstance(params.get("transforms"), list):
            yield from _config_names(params["transforms"])


def _summary(cls: type) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    return plain(" ".join(doc.split("\n\n", 1)[0].split()))


def plain(text: str) -> str:
    """Docstring markup as Markdown: ``:class:`~a.B` `` and double backticks become single backticks.

    >>> plain("see :class:`~medaug.spatial.affine.Affine` and ``p``")
    'see `Affine` and `p`'
    """
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


def docstring_parameters(doc: str | None, section: str = "Parameters") -> dict[str, tuple[str, str]]:
    """``name -> (type, description)`` from a section (Parameters, Attributes) of a NumPy docstring.

    A line ``lo, hi : float`` documents both names.

    >>> docstring_parameters('''Scale.
    ...
    ... Parameters
    ... ----------
    ... lo, hi : float
    ...     The range.
    ... p : float
    ...     Probability.
    ... ''')
    {'lo': ('float', 'The range.'), 'hi': ('float', 'The range.'), 'p': ('float', 'Probability.')}
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, tuple[str, str]] = {}
    try:
        start = next(i for i, line in enumerate(lines[:-1])
                     if line.strip() == section and set(lines[i + 1].strip()) == {"-"}) + 2
    except StopIteration:
        return out
    names: list[str] = []
    kind, text = "", []

    def flush() -> None:
        for n in names:
            out[n] = (kind, plain(" ".join(text)))

    for i in range(start, len(lines)):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"}:
            break  # the next section's header
        if line and not line[0].isspace():
            flush()
            head, _, kind = line.partition(" : ")
            names, kind, text = [n.strip() for n in head.split(",")], kind.strip(), []
        elif line.strip():
            text.append(line.strip())
    flush()
    return out


def _documented(cls: type) -> dict[str, tuple[str, str]]:
    """Documented parameters of ``cls``, else of its bases, else of the class it draws (``RandomX`` -> ``X``).

    Shared parameters (``p``, ``channels``, ``mask``) are documented once, on a base class
    (in its Attributes when its own signature lacks them).
    """
    drawn = transform_classes().get(cls.__name__[len("Random"):]) if cls.__name__.startswith("Random") else None
    sources = [*reversed(drawn.__mro__ if drawn else ()), *reversed(cls.__mro__)]
    found: dict[str, tuple[str, str]] = {}
    for c in sources:  # the class itself last: its own text wins
        doc = c.__dict__.get("__doc__")
        for name, (kind, text) in {**docstring_parameters(doc, "Attributes"), **docstring_parameters(doc)}.items():
            old_kind, old_text = found.get(name, ("", ""))
            found[name] = (kind or old_kind, text or old_text)
    return found


def _parameters(cls: type) -> Iterator[Parameter]:
    documented = _documented(cls)
    if dataclasses.is_dataclass(cls):
        fields = [(f.name, f.type, _default(f)) for f in dataclasses.fields(cls) if f.init]
    else:
        sig = inspect.signature(cls)
        fields = [(p.name, p.annotation, p.default) for p in sig.parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for name, annotation, default in fields:
        kind, description = documented.get(name, ("", ""))
        required = default is dataclasses.MISSING or default is inspect.Parameter.empty
        allowed, unit = _bounds(cls, name) if not required else ("", "")
        yield Parameter(
            name=name, type=kind or _annotation(annotation), default=None if required else to_jsonable(default),
            required=required, unit=unit or (_unit(description) if allowed else ""), allowed=allowed,
            description=description,
        )


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _unit(description: str) -> str:
    for unit, words in _UNITS.items():
        if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", description) for w in words):
            return unit
    return ""


def _bounds(cls: type, name: str) -> tuple[str, str]:
    """The allowed values of parameter ``name`` and their unit, as the class's validation words them."""
    for value in _PROBES:
        try:
            cls(**{name: value})
        except ParameterError as exc:
            m = _BOUND.search(str(exc))
            if m:
                left, lo, hi, unit = m.groups()
                if float(lo) <= -_ANY and float(hi) >= _ANY:
                    return "any finite number", unit.strip()
                return f"{left}{lo}, {hi}]", unit.strip()
        except Exception:  # noqa: BLE001 - another reason to refuse the probe (a file, a type): no bound to read
            continue
    return "", ""

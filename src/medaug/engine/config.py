"""Pipelines from and to configuration: a list of ``{TransformName: {params}}`` items.

YAML and JSON files are accepted.  Validation names the offending key and the
allowed values: an unknown transform or parameter gets a "did you mean", a
renamed one its new name.  YAML is read with a loader that refuses anchors and
aliases (no alias bombs), files above a size limit and nesting deeper than
:data:`MAX_NESTING` (no ``RecursionError``); groups nest at most
:data:`~medaug.engine.compose.MAX_DEPTH` deep.

Groups (``Compose``, ``OneOf``, ``SomeOf``) take ``p``, their own keys
(``weights``, ``n``) and the resampling options ``fill``, ``interpolation``,
``label_interpolation``, ``backend``, ``tolerance``; set ones apply to the
group (see :class:`~medaug.engine.compose.Compose`) and are saved with it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from ..errors import ParameterError, did_you_mean
from .compose import MAX_DEPTH, Compose, OneOf, SomeOf
from .registry import transform_class, transform_classes, unknown_name_hint
from .transform import _Base

__all__ = [
    "pipeline_from_config", "pipeline_to_config", "save_config", "load_config_file", "transform_names", "MAX_NESTING",
]

MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting of lists and mappings a configuration may hold.
MAX_NESTING = 100
_RESAMPLING_OPTIONS = ("fill", "interpolation", "label_interpolation", "backend", "tolerance")
_PIPELINE_OPTIONS = (*_RESAMPLING_OPTIONS, "modality", "on_violation", "p")
_GROUP_KEYS = {"Compose": ("p",), "OneOf": ("weights", "p"), "SomeOf": ("n", "p")}


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that rejects anchors, aliases and nesting deeper than :data:`MAX_NESTING`."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def,unused-ignore]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ParameterError(f"YAML aliases are not allowed in pipeline configs (line {event.start_mark.line + 1})")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise ParameterError(f"YAML anchors are not allowed in pipeline configs (line {event.start_mark.line + 1})")
        if self._depth >= MAX_NESTING:
            raise ParameterError(f"the config nests deeper than {MAX_NESTING} levels (line {event.start_mark.line + 1})")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def json_depth(text: str | bytes) -> int:
    """Deepest nesting of brackets and braces in JSON text (outside strings), read without recursion.

    Bytes are read as Latin-1: the bytes of a multi-byte UTF-8 character are never ASCII, so
    brackets, quotes and backslashes are found exactly as in the decoded text.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _check_nesting(obj: Any) -> None:
    """Refuse Python objects nesting deeper than :data:`MAX_NESTING` (walked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, Mapping)):
            if depth > MAX_NESTING:
                raise ParameterError(f"the config nests deeper than {MAX_NESTING} levels")
            values = item.values() if isinstance(item, Mapping) else item
            stack.extend((v, depth + 1) for v in values)


def transform_names() -> list[str]:
    """Every name usable in a configuration file."""
    return sorted(n for n in transform_classes() if not n.startswith("_"))


def load_config_file(path: str | Path) -> Any:
    """Read a YAML or JSON file into Python objects, with clear errors."""
    p = Path(path)
    if not p.exists():
        raise ParameterError("config file not found", path=p)
    if p.is_dir():
        raise ParameterError("is a directory, expected a YAML or JSON file", path=p)
    size = p.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ParameterError(f"config file is {size} bytes, above the {MAX_CONFIG_BYTES}-byte limit", path=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterError(
            f"config file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position {exc.start}); save it "
            "as UTF-8",
            path=p,
        ) from None
    except OSError as exc:
        raise ParameterError(f"cannot read config: {exc.strerror or exc}", path=p) from None
    try:
        if p.suffix.lower() == ".json":
            if json_depth(text) > MAX_NESTING:
                raise ParameterError(f"the config nests deeper than {MAX_NESTING} levels")
            return json.loads(text)
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - safe loader subclass
    except ParameterError as exc:
        raise ParameterError(str(exc), path=p) from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ParameterError(f"not valid YAML/JSON: {str(exc).splitlines()[0]}", path=p) from exc


def pipeline_from_config(obj: Any, **options: Any) -> Compose:
    """Build a pipeline from a list of ``{Name: params}`` items, a dict with ``transforms``, or a file path.

    Parameters
    ----------
    obj : list, dict, str or Path
        The configuration, or the path of a YAML/JSON file holding it.
    **options
        Pipeline options (``fill``, ``interpolation``, ``modality`` ...) overriding the file's.

    Raises
    ------
    ParameterError
        Naming the item, the key and the allowed values.

    Examples
    --------
    >>> p = pipeline_from_config([{"RandomAffine": {"rotation": 10}}, {"RandomFlip": {"axes": ["LR"], "p": 0.5}}])
    >>> [type(t).__name__ for t in p.transforms]
    ['RandomAffine', 'RandomFlip']
    """
    where = None
    if isinstance(obj, (str, Path)):
        where = str(obj)
        obj = load_config_file(obj)
    try:
        _check_nesting(obj)
        return _build_pipeline(obj, options)
    except ParameterError as exc:
        if where and not str(exc).startswith(where):
            raise ParameterError(str(exc), path=where) from None
        raise


def _build_pipeline(obj: Any, options: dict[str, Any]) -> Compose:
    if isinstance(obj, Mapping) and "transforms" in obj:
        extra = {k: v for k, v in obj.items() if k != "transforms"}
        for k in extra:
            if k not in _PIPELINE_OPTIONS:
                raise ParameterError(f"unknown pipeline option {k!r}{did_you_mean(k, _PIPELINE_OPTIONS)}; allowed: {', '.join(_PIPELINE_OPTIONS)}")
        items = obj["transforms"]
        options = {**extra, **options}
    else:
        items = obj
    if not isinstance(items, list):
        got = "a mapping without a 'transforms' key" if isinstance(items, Mapping) else type(items).__name__
        raise ParameterError(
            f"a pipeline config must be a list of {{TransformName: {{params}}}} items, got {got}; write each "
            "transform as a list item, e.g. '- RandomAffine: {rotation: 10}'"
        )
    children = [_build_item(item, i) for i, item in enumerate(items)]
    try:
        return Compose(children, **options)
    except ParameterError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"invalid pipeline option: {_one_line(exc)}") from None


def _build_item(item: Any, index: int, depth: int = 1) -> _Base:
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, Mapping) or len(item) != 1:
        raise ParameterError(f"item {index + 1}: expected one {{TransformName: {{params}}}} mapping, got {item!r}")
    ((name, params),) = item.items()
    if not isinstance(name, str):
        raise ParameterError(f"item {index + 1}: a transform name must be text, got {name!r}")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        shown = name if name.isprintable() else repr(name)  # a message is one line, whatever the file holds
        raise ParameterError(f"item {index + 1} ({shown}): parameters must be a mapping, got {params!r}")
    if name in _GROUP_KEYS:
        if depth > MAX_DEPTH:
            raise ParameterError(f"item {index + 1} ({name}): groups nest more than {MAX_DEPTH} deep; flatten the pipeline")
        kids = params.get("transforms")
        if not isinstance(kids, list):
            raise ParameterError(f"item {index + 1} ({name}): needs a 'transforms' list")
        children = [_build_item(k, j, depth + 1) for j, k in enumerate(kids)]
        rest = {k: v for k, v in params.items() if k != "transforms"}
        group = {"Compose": Compose, "OneOf": OneOf, "SomeOf": SomeOf}[name]
        _check_keys(name, rest, (*_GROUP_KEYS[name], *_RESAMPLING_OPTIONS), index)
        try:
            return group(children, **rest)
        except ParameterError as exc:
            raise ParameterError(f"item {index + 1} ({name}): {_one_line(exc)}") from None
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"item {index + 1} ({name}): invalid parameters {dict(rest)!r}: {_one_line(exc)}") from None
    cls = transform_class(name)
    if cls is None:
        raise ParameterError(
            f"item {index + 1}: unknown transform {name!r}{unknown_name_hint(name)}; "
            "run 'medaug transforms' for the list"
        )
    allowed = _parameter_names(cls)
    _check_keys(name, params, allowed, index)
    try:
        return cast("type[_Base]", cls).from_params(params)
    except ParameterError as exc:
        raise ParameterError(f"item {index + 1} ({name}): {_one_line(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"item {index + 1} ({name}): {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line (a value from the file may hold line breaks)."""
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


def _parameter_names(cls: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return tuple(inspect.signature(cls).parameters)


def _check_keys(name: str, params: Mapping[str, Any], allowed: tuple[str, ...], index: int) -> None:
    for key in params:
        if not isinstance(key, str):
            raise ParameterError(f"item {index + 1} ({name}): parameter names must be text, got {key!r}; allowed: "
                                 f"{', '.join(allowed)}")
        if key not in allowed:
            raise ParameterError(
                f"item {index + 1} ({name}): unknown parameter {key!r}{did_you_mean(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )


def pipeline_to_config(pipeline: Compose) -> Any:
    """The configuration form of a pipeline (inverse of :func:`pipeline_from_config`)."""
    return pipeline.to_config()


def save_config(pipeline: Compose, path: str | Path) -> None:
    """Write a pipeline as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
    p = Path(path)
    cfg = pipeline_to_config(pipeline)
    text = json.dumps(cfg, indent=2) if p.suffix.lower() == ".json" else yaml.safe_dump(cfg, sort_keys=False)
    p.write_text(text, encoding="utf-8")

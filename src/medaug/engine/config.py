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
import re
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
_PIPELINE_OPTIONS = (*_RESAMPLING_OPTIONS, "modality", "channel_modalities", "on_violation", "p")
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


# YAML 1.2 (and JSON) read 5e-3 and 1e30 as numbers; PyYAML's YAML 1.1 rules want a dot ("5.0e-3") and
# would give the strings '5e-3' and '1e30'
_NoAliasLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


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
    """Read a YAML or JSON file into Python objects, with clear errors.

    Raises
    ------
    ParameterError
        Naming the file and, for a syntax error, the line, column and cause,
        e.g. ``pipe.yaml: line 2, column 1: a tab character cannot indent YAML; use spaces``.
    """
    return _read_config(path)[0]


#: Where the items of a YAML config are: item path (index, index in its group, ...) -> (line, {parameter: line}).
_Lines = dict[tuple[int, ...], tuple[int, dict[str, int]]]


def _read_config(path: str | Path) -> tuple[Any, _Lines]:
    """The file's objects and, for YAML, the line of each item and parameter (1-based)."""
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
            return json.loads(text), {}
        node = yaml.compose(text, Loader=_NoAliasLoader)  # noqa: S506 - safe loader subclass
        return yaml.load(text, Loader=_NoAliasLoader), _item_lines(node)  # noqa: S506
    except ParameterError as exc:
        raise ParameterError(str(exc), path=p) from None
    except json.JSONDecodeError as exc:
        raise ParameterError(f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}", path=p) from None
    except yaml.YAMLError as exc:
        raise ParameterError(_yaml_problem(exc), path=p) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML syntax error as ``line L, column C: cause`` (a tab indent said in words)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem is None:
        return f"not valid YAML: {str(exc).splitlines()[0]}"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if "'\\t'" in problem:
        return f"{where}a tab character cannot indent YAML; use spaces"
    context = getattr(exc, "context", None)
    started = getattr(exc, "context_mark", None)
    if context and started is not None:
        context += f" started at line {started.line + 1}, column {started.column + 1}"
    return f"{where}not valid YAML: {problem}" + (f" ({context})" if context else "")


def _item_lines(node: yaml.Node | None) -> _Lines:
    """The line of every pipeline item of a composed YAML document, and of each of its parameters."""
    lines: _Lines = {}
    if isinstance(node, yaml.MappingNode):  # {transforms: [...], options}
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "transforms"), None)
    stack: list[tuple[tuple[int, ...], yaml.Node | None]] = [((), node)]
    while stack:
        where, seq = stack.pop()
        if not isinstance(seq, yaml.SequenceNode):
            continue
        for i, item in enumerate(seq.value):
            keys: dict[str, int] = {}
            if isinstance(item, yaml.MappingNode) and len(item.value) == 1:
                params = item.value[0][1]
                if isinstance(params, yaml.MappingNode):
                    for k, v in params.value:
                        if isinstance(k, yaml.ScalarNode):
                            keys[k.value] = k.start_mark.line + 1
                            if k.value == "transforms":
                                stack.append((where + (i,), v))
            lines[where + (i,)] = (item.start_mark.line + 1, keys)
    return lines


def pipeline_from_config(obj: Any, **options: Any) -> Compose:
    """Build a pipeline from a list of ``{Name: params}`` items, a dict with ``transforms``, or a file path.

    Every problem of the configuration is reported at once (unknown transforms
    and parameters, bad values, in every item), each with its item and, for a
    YAML file, its line.

    Parameters
    ----------
    obj : list, dict, str or Path
        The configuration, or the path of a YAML/JSON file holding it.
    **options
        Pipeline options (``fill``, ``interpolation``, ``modality`` ...) overriding the file's.

    Raises
    ------
    ParameterError
        Naming the file, the item, the key and the allowed values; one line per problem.

    Examples
    --------
    >>> p = pipeline_from_config([{"RandomAffine": {"rotation": 10}}, {"RandomFlip": {"axes": ["LR"], "p": 0.5}}])
    >>> [type(t).__name__ for t in p.transforms]
    ['RandomAffine', 'RandomFlip']
    >>> pipeline_from_config([{"RandomAfine": {}}, {"RandomFlip": {"p": 2}}])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ParameterError: 2 problems in the config:
      item 1: unknown transform 'RandomAfine' (did you mean 'RandomAffine'?) ...
      item 2 (RandomFlip): 'p' must be a probability in [0, 1], got 2
    """
    where, lines = None, cast("_Lines", {})
    if isinstance(obj, (str, Path)):
        where = str(obj)
        obj, lines = _read_config(obj)
    try:
        _check_nesting(obj)
        return _build_pipeline(obj, options, _Problems(lines))
    except ParameterError as exc:
        if where and not str(exc).startswith(where):
            raise ParameterError(exc.message, path=where) from None
        raise


class _Problems:
    """The problems found in a configuration, each with its item path and line."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.found: list[str] = []

    def add(self, where: tuple[int, ...], name: str | None, message: str, key: str | None = None) -> None:
        line, keys = self.lines.get(where, (None, {}))
        line = keys.get(key, line) if key is not None else line
        item = "item " + ".".join(str(i + 1) for i in where) + (f" ({name})" if name else "")
        self.found.append(f"{f'line {line}: ' if line else ''}{item}: {message}")

    def raise_if_any(self) -> None:
        if len(self.found) == 1:
            raise ParameterError(self.found[0])
        if self.found:
            raise ParameterError(f"{len(self.found)} problems in the config:\n  " + "\n  ".join(self.found))


def _build_pipeline(obj: Any, options: dict[str, Any], problems: _Problems) -> Compose:
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
    children = [_build_item(item, (i,), problems) for i, item in enumerate(items)]
    problems.raise_if_any()
    try:
        return Compose(cast("list[_Base]", children), **options)
    except ParameterError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"invalid pipeline option: {_one_line(exc)}") from None


def _build_item(item: Any, where: tuple[int, ...], problems: _Problems) -> _Base | None:
    """The transform or group of one item, or None after adding its problems to ``problems``."""
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, Mapping) or len(item) != 1:
        problems.add(where, None, f"expected one {{TransformName: {{params}}}} mapping, got {item!r}")
        return None
    ((name, params),) = item.items()
    if not isinstance(name, str):
        problems.add(where, None, f"a transform name must be text, got {name!r}")
        return None
    params = {} if params is None else params
    shown = name if name.isprintable() else repr(name)  # a message is one line, whatever the file holds
    if not isinstance(params, Mapping):
        problems.add(where, shown, f"parameters must be a mapping, got {params!r}")
        return None
    if name in _GROUP_KEYS:
        return _build_group(name, params, where, problems)
    cls = transform_class(name)
    if cls is None:
        problems.add(where, None, f"unknown transform {name!r}{unknown_name_hint(name)}; "
                     "run 'medaug transforms' for the list")
        return None
    allowed = _parameter_names(cls)
    known = _check_keys(name, params, allowed, where, problems)
    try:  # with unknown names left out, so that a bad value is reported with them
        built = cast("type[_Base]", cls).from_params({k: v for k, v in params.items() if k in allowed})
    except (TypeError, ValueError) as exc:  # ParameterError is a ValueError
        problems.add(where, name, _one_line(exc), _key_of(exc, params))
        return None
    return built if known else None


def _build_group(name: str, params: Mapping[str, Any], where: tuple[int, ...], problems: _Problems) -> _Base | None:
    if len(where) > MAX_DEPTH:
        problems.add(where, name, f"groups nest more than {MAX_DEPTH} deep; flatten the pipeline")
        return None
    kids = params.get("transforms")
    if not isinstance(kids, list):
        problems.add(where, name, "needs a 'transforms' list")
        return None
    before = len(problems.found)
    children = [_build_item(k, where + (j,), problems) for j, k in enumerate(kids)]
    rest = {k: v for k, v in params.items() if k != "transforms"}
    if not _check_keys(name, rest, (*_GROUP_KEYS[name], *_RESAMPLING_OPTIONS), where, problems) or \
            len(problems.found) > before:
        return None
    group = {"Compose": Compose, "OneOf": OneOf, "SomeOf": SomeOf}[name]
    try:
        return group(cast("list[_Base]", children), **rest)
    except ParameterError as exc:
        problems.add(where, name, _one_line(exc), _key_of(exc, rest))
    except (TypeError, ValueError) as exc:
        problems.add(where, name, f"invalid parameters {dict(rest)!r}: {_one_line(exc)}")
    return None


def _key_of(exc: BaseException, params: Mapping[str, Any]) -> str | None:
    """The parameter an error message names (``'scale': ...``), if it is one of ``params``."""
    text = str(exc)
    return next((k for k in params if isinstance(k, str) and (f"'{k}'" in text or f"'{k}[" in text)), None)


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line (a value from the file may hold line breaks)."""
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


def _parameter_names(cls: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)
    return tuple(inspect.signature(cls).parameters)


def _check_keys(name: str, params: Mapping[str, Any], allowed: tuple[str, ...], where: tuple[int, ...],
                problems: _Problems) -> bool:
    """Add a problem for every unknown parameter name of an item; True when every name is allowed."""
    ok = True
    for key in params:
        if not isinstance(key, str):
            problems.add(where, name, f"parameter names must be text, got {key!r}; allowed: {', '.join(allowed)}")
            ok = False
        elif key not in allowed:
            problems.add(where, name, f"unknown parameter {key!r}{did_you_mean(key, allowed)}; allowed: "
                         f"{', '.join(allowed)}", key)
            ok = False
    return ok


def pipeline_to_config(pipeline: Compose) -> Any:
    """The configuration form of a pipeline (inverse of :func:`pipeline_from_config`)."""
    return pipeline.to_config()


def save_config(pipeline: Compose, path: str | Path) -> None:
    """Write a pipeline as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
    p = Path(path)
    cfg = pipeline_to_config(pipeline)
    text = json.dumps(cfg, indent=2) if p.suffix.lower() == ".json" else yaml.safe_dump(cfg, sort_keys=False)
    p.write_text(text, encoding="utf-8")

"""What the review page's routes do, per mode: verdicts (blind or open) or the visual Turing test.

Verdict modes (``blind``, ``open``), page ``index.html``:

``GET /api/samples``     the samples; transforms only in open mode or once judged
``GET /api/progress``    counts of judged samples
``GET /api/meta?sample=ID&which=original|augmented[&channel=C]``
                         how to draw the image (:meth:`.images.ImageSource.meta`)
``GET /api/plane?sample=ID&which=...&axis=0|1|2[&index=K][&layer=image|label][&channel=C]``
                         one plane as raw little-endian voxels (axis 0 axial, 1 coronal, 2 sagittal)
``GET /api/slice?sample=ID&which=...&axis=..&index=..&window=lo,hi``
                         one plane as a greyscale PNG (thumbnails)
``POST /api/verdict``    JSON ``{"sample", "verdict": "realistic"|"not_realistic", "comment"}``

In blind mode the page shows the augmented image alone, and the original (and
the transforms) only once the reviewer has given a verdict on the sample; the
server refuses the original before that (403).

Turing mode, page ``turing.html`` (see :mod:`.turing`):

``GET /api/turing/deck``           the reader's tokens in order, with the reader's own answers
``GET /api/meta?token=T``          as above, without labels
``GET /api/plane?token=T&axis=..``  as above, image layer only
``POST /api/turing/answer``        JSON ``{"token", "answer": "real"|"augmented", "confidence": 1..5}``

No route of the Turing mode says whether an image is an original, nor its
case id or file: images are addressed by the reader's opaque tokens.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ParameterError
from ..figures import describe_history
from ._http import HttpError, Query, query_int, query_one, query_window
from .images import ImageRef, ImageSource
from .store import VERDICTS, ReviewSample, VerdictStore, read_samples
from .turing import ANSWERS, CONFIDENCE, TuringStore, turing_items

__all__ = ["MODES", "TuringApp", "VerdictApp", "make_app"]

MODES = ("blind", "open", "turing")
_MAX_COMMENT = 4000
JSON = "application/json"
Response = tuple[bytes, str]


def _json(obj: Any) -> Response:
    return json.dumps(obj).encode(), JSON


def _modality_of_job(directory: Path) -> str | None:
    """The pipeline's modality from ``DIR/.medaug/job.json`` (``None`` when unknown)."""
    path = directory / ".medaug" / "job.json"
    if not path.is_file():  # missing, or a FIFO that would block the read
        return None
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
        pipe = job.get("pipeline")
        if isinstance(pipe, dict):
            if pipe.get("modality"):
                return str(pipe["modality"])
            if pipe.get("preset"):
                return str(pipe["preset"]).split("-")[0].split("_")[0].lower()
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _fields(body: Any, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """``body`` as a JSON object holding no field outside ``allowed`` (400 otherwise)."""
    if not isinstance(body, dict):
        raise HttpError(400, f"the body must be a JSON object {{{', '.join(allowed)}}}")
    unknown = set(body) - set(allowed)
    if unknown:
        raise HttpError(400, f"unknown field(s) in the {what}: {', '.join(sorted(map(str, unknown)))}")
    return body


class _App:
    """Samples, images and the database of one review folder; routes by name (see the subclasses)."""

    page: ClassVar[str]
    GET: ClassVar[dict[str, str]]  # path -> method(query) -> Response
    POST: ClassVar[dict[str, str]]  # path -> method(body) -> JSON-able

    def __init__(self, directory: str | Path, *, reviewer: str | None = None, modality: str | None = None,
                 cache_size: int = 16) -> None:
        self.directory = Path(directory).resolve()
        self.samples: dict[str, ReviewSample] = read_samples(self.directory)
        self.reviewer = reviewer or ""
        self.images = ImageSource(modality or _modality_of_job(self.directory), cache_size)

    def validate(self, query: Query) -> None:
        """Checks run on every request, whatever its route and method (404 for an unknown id)."""

    def close(self) -> None:
        """Release the database connection held open."""


class VerdictApp(_App):
    """Blind or open review: a verdict ("realistic" or not) and a comment per sample."""

    page = "index.html"
    GET: ClassVar[dict[str, str]] = {"/api/samples": "samples_list", "/api/progress": "progress_json", "/api/meta": "meta",
           "/api/plane": "plane", "/api/slice": "slice_png"}
    POST: ClassVar[dict[str, str]] = {"/api/verdict": "verdict"}

    def __init__(self, directory: str | Path, *, mode: str = "blind", **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self.mode = mode
        self.store = VerdictStore(self.directory)
        self.store.hold_open()
        order = list(self.samples)
        if mode == "blind":  # a fixed shuffle, so a grid's order does not tell the parameters
            order.sort(key=lambda sid: hashlib.sha256(sid.encode()).hexdigest())
        self.order = order

    def close(self) -> None:
        self.store.close()

    def validate(self, query: Query) -> None:
        for sid in query.get("sample", []):  # an unknown sample is 404 whatever the route or method
            if sid not in self.samples:
                raise HttpError(404, f"unknown sample {sid[:80]!r}")

    # ------------------------------------------------------------ samples and verdicts
    def describe(self, s: ReviewSample, verdict: dict[str, Any] | None) -> dict[str, Any]:
        item: dict[str, Any] = {"id": s.id, "case_id": s.case_id, "index": s.index, "original": s.original is not None,
                                "verdict": verdict["verdict"] if verdict else None,
                                "comment": verdict["comment"] if verdict else ""}
        if self.mode == "open" or verdict:
            item["transforms"] = [t["name"] for t in s.transforms]
            item["description"] = describe_history(s.history)
        return item

    def samples_list(self, query: Query) -> Response:
        verdicts = self.store.of_reviewer(self.reviewer)
        items = [self.describe(self.samples[sid], verdicts.get(sid)) for sid in self.order]
        return _json({"mode": self.mode, "reviewer": self.reviewer, "samples": items})

    def progress(self) -> dict[str, Any]:
        verdicts = {k: v for k, v in self.store.of_reviewer(self.reviewer).items() if k in self.samples}
        ok = sum(v["verdict"] == "realistic" for v in verdicts.values())
        return {"total": len(self.samples), "reviewed": len(verdicts), "realistic": ok,
                "not_realistic": len(verdicts) - ok, "reviewer": self.reviewer}

    def progress_json(self, query: Query) -> Response:
        return _json(self.progress())

    def verdict(self, body: Any) -> dict[str, Any]:
        body = _fields(body, ("sample", "verdict", "comment"), "verdict")
        sid = body.get("sample")
        if not isinstance(sid, str):
            raise HttpError(400, "'sample' must be a string")
        if sid not in self.samples:
            raise HttpError(404, f"unknown sample {sid[:80]!r}")
        verdict = body.get("verdict")
        if verdict not in VERDICTS:
            raise HttpError(400, f"'verdict' must be one of {', '.join(VERDICTS)}")
        comment = body.get("comment") or ""
        if not isinstance(comment, str) or len(comment) > _MAX_COMMENT:
            raise HttpError(400, f"'comment' must be a string of at most {_MAX_COMMENT} characters")
        saved = self.store.put(sid, verdict, comment, self.reviewer)
        return {"saved": True, "sample": self.describe(self.samples[sid], saved), "progress": self.progress()}

    # ------------------------------------------------------------ images
    def _ref(self, query: Query) -> tuple[ImageRef, str]:
        """The image a request names, and how to call it in an error message."""
        s = self.samples[query_one(query, "sample")]
        which = query_one(query, "which", "augmented")
        if which not in ("original", "augmented"):
            raise HttpError(400, "which must be 'original' or 'augmented'")
        if which == "original" and s.original is None:
            raise HttpError(404, "this expansion lists no original (--anonymize-ids leaves the sources out of the "
                                 "manifest); expand with --include-originals to see each original beside its copies")
        if which == "original" and self.mode == "blind" and s.id not in self.store.of_reviewer(self.reviewer):
            raise HttpError(403, "blind review: the original is shown once you have given your verdict on the sample")
        if which == "original" and s.original is not None:
            ref = ImageRef(s.original, s.original_label)
        else:
            ref = ImageRef(s.augmented, s.augmented_label)
        return ref, f"the {which} image of sample {s.id}"

    def meta(self, query: Query) -> Response:
        ref, what = self._ref(query)
        return _json(self.images.meta(ref, query_int(query, "channel", 0), what=what))

    def plane(self, query: Query) -> Response:
        ref, what = self._ref(query)
        data = self.images.plane(ref, query_int(query, "axis", 0), query_int(query, "index", None),
                                 query_int(query, "channel", 0), layer=query_one(query, "layer", "image"), what=what)
        return data, "application/octet-stream"

    def slice_png(self, query: Query) -> Response:
        ref, what = self._ref(query)
        png = self.images.thumbnail(ref, query_int(query, "axis", 0), query_int(query, "index", None),
                                    query_window(query), what=what)
        return png, "image/png"


class TuringApp(_App):
    """The visual Turing test of one reader (see :mod:`.turing`)."""

    page = "turing.html"
    GET: ClassVar[dict[str, str]] = {"/api/turing/deck": "deck", "/api/meta": "meta", "/api/plane": "plane"}
    POST: ClassVar[dict[str, str]] = {"/api/turing/answer": "answer"}
    WHAT = "this image"  # the only name an image has in an error message

    def __init__(self, directory: str | Path, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        if not self.reviewer:
            raise ParameterError("the Turing test needs the reader's name (--reviewer NAME): readers are kept apart")
        self.items, self.missing = turing_items(self.samples)
        self.store = TuringStore(self.directory)
        self.store.hold_open()
        self.tokens = dict(self.store.deck(self.reviewer, list(self.items)))  # token -> item key, in deck order

    def close(self) -> None:
        self.store.close()

    def validate(self, query: Query) -> None:
        for token in query.get("token", []):
            if token not in self.tokens:
                raise HttpError(404, "unknown image token")

    def deck(self, query: Query) -> Response:
        answers = self.store.of_reader(self.reviewer)
        items = [{"token": token, **answers.get(key, {"answer": None, "confidence": None})}
                 for token, key in self.tokens.items()]
        return _json({"reader": self.reviewer, "total": len(items),
                      "answered": sum(i["answer"] is not None for i in items), "items": items})

    def _ref(self, query: Query) -> ImageRef:
        return ImageRef(self.items[self.tokens[query_one(query, "token")]].image)

    def meta(self, query: Query) -> Response:
        channel = query_int(query, "channel", 0)
        return _json(self.images.meta(self._ref(query), channel, what=self.WHAT, with_labels=False))

    def plane(self, query: Query) -> Response:
        if query_one(query, "layer", "image") != "image":
            raise HttpError(400, "the Turing test shows images only (no label maps)")
        data = self.images.plane(self._ref(query), query_int(query, "axis", 0), query_int(query, "index", None),
                                 query_int(query, "channel", 0), what=self.WHAT)
        return data, "application/octet-stream"

    def answer(self, body: Any) -> dict[str, Any]:
        body = _fields(body, ("token", "answer", "confidence"), "answer")
        token = body.get("token")
        if not isinstance(token, str) or token not in self.tokens:
            raise HttpError(404, "unknown image token")
        answer, confidence = body.get("answer"), body.get("confidence")
        if answer not in ANSWERS:
            raise HttpError(400, f"'answer' must be one of {', '.join(ANSWERS)}")
        if type(confidence) is not int or confidence not in CONFIDENCE:  # not True, not 3.0
            raise HttpError(400, "'confidence' must be an integer from 1 (a guess) to 5 (certain)")
        self.store.put(self.reviewer, self.tokens[token], answer, confidence)
        answered = len(set(self.store.of_reader(self.reviewer)) & set(self.tokens.values()))
        return {"saved": True, "answered": answered, "total": len(self.tokens)}


def make_app(directory: str | Path, *, mode: str = "blind", reviewer: str | None = None, modality: str | None = None,
             cache_size: int = 16) -> VerdictApp | TuringApp:
    """The app of a mode (one of :data:`MODES`)."""
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "turing":
        return TuringApp(directory, reviewer=reviewer, modality=modality, cache_size=cache_size)
    return VerdictApp(directory, mode=mode, reviewer=reviewer, modality=modality, cache_size=cache_size)

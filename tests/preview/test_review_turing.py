"""The visual Turing test: opaque tokens, per-reader decks, answers kept, nothing told before (or after) the answer,
and a summary whose numbers equal a count of the stored answers, with Wilson intervals checked by hand."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest

import medaug
from medaug.cli.main import main as cli_main
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.errors import ParameterError
from medaug.preview.review import (
    ReviewSample,
    ReviewServer,
    TuringStore,
    read_samples,
    summary_json,
    turing_items,
    turing_summary,
    wilson,
)

from ._util import call, get_json

CASES = ("qxalpha", "qxbravo")  # ids that cannot occur in the page by chance
PIPELINE = [{"RandomAffine": {"rotation": 9}}, {"RandomNoise": {"std": [0, 20]}}]


@pytest.fixture(scope="module")
def turing_folder(tmp_path_factory) -> Path:
    """Two phantoms (2D and 3D, with labels), three random copies each; originals are the source files."""
    root = tmp_path_factory.mktemp("turing")
    (root / "in" / "images").mkdir(parents=True)
    (root / "in" / "labels").mkdir()
    for case, sample in zip(CASES, (medaug.shepp_logan_2d(40, seed=2), medaug.shepp_logan_3d(16, seed=3))):
        medaug.save(sample["image"], root / "in" / "images" / f"{case}.nii.gz")
        medaug.save(sample["label"], root / "in" / "labels" / f"{case}.nii.gz")
    run_expand(ExpandJob(str(root / "in"), str(root / "out"), PIPELINE, n=3, seed=5), progress=False)
    return root / "out"


@pytest.fixture
def fresh(turing_folder, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(turing_folder, tmp_path / "out"))


def secrets_of(folder: Path) -> list[bytes]:
    """What must never reach the Turing page: case ids, the labels of the items, file names, folders."""
    return [c.encode() for c in CASES] + [b"original", b"augmented", b".nii", b"images/", str(folder).encode()]


def answer(srv, token: str, kind: str, confidence: int = 3):
    return call(srv, "/api/turing/answer", {"token": token, "answer": kind, "confidence": confidence})


# ---------------------------------------------------------------- API
def test_only_tokens_reach_the_page(fresh):
    with ReviewServer(fresh, port=0, mode="turing", reviewer="alice") as srv:
        status, _, raw = call(srv, "/api/turing/deck")
        assert status == 200 and not any(s in raw for s in secrets_of(fresh))
        deck = json.loads(raw)
        tokens = [i["token"] for i in deck["items"]]
        assert deck["total"] == 8 == len(set(tokens)) and deck["answered"] == 0  # 6 augmented, 2 originals
        assert all(len(t) >= 16 for t in tokens)
        for token in tokens:
            status, _, raw = call(srv, f"/api/meta?token={token}")
            assert status == 200 and not any(s in raw for s in secrets_of(fresh))
            meta = json.loads(raw)
            assert meta["labels"] == []  # no label map in the test
            rows, cols = meta["planes"][0]["shape"]
            status, ctype, data = call(srv, f"/api/plane?token={token}&axis=0")
            assert status == 200 and ctype == "application/octet-stream"
            assert len(data) == rows * cols * (2 if meta["dtype"] == "int16" else 4)
        refused = {"/api/samples": 404, "/api/progress": 404, "/api/slice?sample=qxalpha:0": 404,
                   "/api/meta?sample=qxalpha:0": 400, f"/api/plane?token={tokens[0]}&layer=label": 400,
                   "/api/meta?token=nope": 404, "/api/plane?token=qxalpha:0": 404}
        for path, expected in refused.items():
            status, _, raw = call(srv, path)
            assert status == expected, (path, status, raw)
            assert b"qxalpha" not in raw
        assert call(srv, "/api/verdict", {"sample": "qxalpha:0", "verdict": "realistic"})[0] == 405
        bad = [{"token": tokens[0], "answer": "maybe", "confidence": 3},
               {"token": tokens[0], "answer": "real", "confidence": 3.0},
               {"token": tokens[0], "answer": "real", "confidence": True},
               {"token": tokens[0], "answer": "real", "confidence": 6},
               {"token": tokens[0], "answer": "real"},
               {"token": tokens[0], "answer": "real", "confidence": 3, "case": "x"}]
        for body in bad:
            assert call(srv, "/api/turing/answer", body)[0] == 400, body
        assert answer(srv, "nope", "real")[0] == 404
        status, _, raw = answer(srv, tokens[0], "real", 4)
        assert status == 200 and json.loads(raw) == {"saved": True, "answered": 1, "total": 8}  # no feedback
        assert get_json(srv, "/api/turing/deck")["items"][0] == {"token": tokens[0], "answer": "real", "confidence": 4}


def test_decks_are_per_reader_shuffled_and_kept(fresh):
    with ReviewServer(fresh, port=0, mode="turing", reviewer="alice") as a:
        deck_a = [i["token"] for i in get_json(a, "/api/turing/deck")["items"]]
    with ReviewServer(fresh, port=0, mode="turing", reviewer="bob") as b:
        deck_b = [i["token"] for i in get_json(b, "/api/turing/deck")["items"]]
    assert not set(deck_a) & set(deck_b)
    with ReviewServer(fresh, port=0, mode="turing", reviewer="alice") as again:
        assert [i["token"] for i in get_json(again, "/api/turing/deck")["items"]] == deck_a
    store = TuringStore(fresh)
    keys = list(turing_items(read_samples(fresh))[0])
    order_a = [k for _, k in store.deck("alice", keys)]
    order_b = [k for _, k in store.deck("bob", keys)]
    assert sorted(order_a) == sorted(order_b) == sorted(keys)


def test_turing_needs_a_reader(fresh, capsys):
    with pytest.raises(ParameterError, match="reader"):
        ReviewServer(fresh, port=0, mode="turing")
    assert cli_main(["review", str(fresh), "--mode", "turing", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--reviewer" in err


def test_originals_come_from_the_copies_or_the_sources(tmp_path):
    copy, source, gone = tmp_path / "c_orig.nii.gz", tmp_path / "src.nii.gz", tmp_path / "missing.nii.gz"
    for p in (copy, source):
        p.write_bytes(b"x")
    rows = [ReviewSample("a:-1", "a", -1, source, copy), ReviewSample("a:0", "a", 0, source, tmp_path / "a0"),
            ReviewSample("b:0", "b", 0, source, tmp_path / "b0"), ReviewSample("c:0", "c", 0, gone, tmp_path / "c0")]
    items, missing = turing_items({s.id: s for s in rows})
    assert items["original:a"].image == copy  # the --include-originals copy wins
    assert items["original:b"].image == source
    assert "original:c" not in items and missing == ["c"]
    assert sorted(k for k in items if k.startswith("augmented:")) == ["augmented:a:0", "augmented:b:0", "augmented:c:0"]


# ---------------------------------------------------------------- statistics
@pytest.mark.parametrize(("k", "n", "lo", "hi"), [(8, 10, 0.4902, 0.9433), (0, 5, 0.0, 0.4345), (5, 5, 0.5655, 1.0),
                                                  (50, 100, 0.4038, 0.5962), (1, 2, 0.0945, 0.9055)])
def test_wilson_interval_matches_hand_computed_values(k, n, lo, hi):
    # hand: p = k/n, z = 1.96; (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0, 0))


def _largest(rotation) -> float:
    """|rotation| in degrees: the angle of a 2D record, the largest of a 3D one."""
    return abs(rotation) if isinstance(rotation, (int, float)) else max(abs(r) for r in rotation)


def _rotation_bin(deg: float) -> str:
    return "0–3°" if deg < 3 else "3–6°" if deg < 6 else "6–10°"


def test_summary_equals_a_count_of_the_stored_answers(fresh, capsys):
    # two readers answer every image; each answers "augmented" on every third image of the deck
    for reader, confidence in (("alice", 2), ("bob", 5)):
        with ReviewServer(fresh, port=0, mode="turing", reviewer=reader) as srv:
            for k, item in enumerate(get_json(srv, "/api/turing/deck")["items"]):
                assert answer(srv, item["token"], "augmented" if k % 3 == 0 else "real", confidence)[0] == 200
    samples = read_samples(fresh)
    stored = TuringStore(fresh).all()
    assert len(stored) == 16 and {a["confidence"] for a in stored if a["reader"] == "bob"} == {5}

    # by hand, from the database rows and the manifest
    def count(rows, kind, transform=None, rotation_bin=None):
        n = k = 0
        for a in rows:
            item = a["item"]
            if not item.startswith(kind + ":"):
                continue
            if transform is not None:
                history = {t["name"]: t["params"] for t in samples[item.split(":", 1)[1]].transforms}
                if transform not in history:
                    continue
                if rotation_bin is not None and _rotation_bin(_largest(history["Affine"]["rotation"])) != rotation_bin:
                    continue
            n += 1
            k += a["answer"] == "real"
        return n, k

    tables = turing_summary(samples, stored)
    assert [t.reader for t in tables] == ["", "alice", "bob"]
    for table in tables:
        rows = [a for a in stored if a["reader"] == table.reader or not table.reader]
        assert (table.originals.judged, table.originals.realistic) == count(rows, "original")
        assert (table.augmented.judged, table.augmented.realistic) == count(rows, "augmented")
        got = {(r.transform, r.parameter, r.range): (r.judged, r.realistic) for r in table.rows}
        assert got[("Affine", "", "")] == count(rows, "augmented", "Affine") == (len(rows) - table.originals.judged,
                                                                                table.augmented.realistic)
        assert got[("Noise", "", "")] == count(rows, "augmented", "Noise")
        for (_transform, parameter, rng), counts in got.items():
            if parameter == "|rotation| (deg)":
                assert counts == count(rows, "augmented", "Affine", rng)
        for row in (table.originals, table.augmented, *table.rows):
            assert row.ci == wilson(row.realistic, row.judged)
    assert tables[0].originals.judged == 4 and tables[0].augmented.judged == 12

    # the command line prints the same numbers
    assert cli_main(["review", str(fresh), "--summary", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(summary_json(len(samples), [], 0, tables)))
    pooled = printed["turing"]["tables"][0]
    assert (pooled["originals"]["n"], pooled["originals"]["k"]) == count(stored, "original")
    assert printed["turing"]["readers"] == ["alice", "bob"] and printed["interval"] == "Wilson score, 95%"
    # each reader answers "augmented" 3 times and meets at most 2 originals there, so at least 2 of the
    # 12 pooled augmented readings are spotted (> 10 %) whatever order the shuffled decks come in
    spotted = 12 - tables[0].augmented.realistic
    assert spotted >= 2
    assert cli_main(["review", str(fresh), "--summary", "--suggest-limits", "0.1"]) == 0
    text = capsys.readouterr().out
    assert "all readers pooled" in text and "reader alice" in text and "reader bob" in text
    assert f"spotted in {spotted} of 12" in text  # e.g. Affine (all ranges)
    assert cli_main(["review", str(fresh), "--summary", "--suggest-limits", "1.5"]) == 2
    assert cli_main(["review", str(fresh), "--json"]) == 2


# ---------------------------------------------------------------- in the browser
def test_turing_page_never_reveals_and_answers_persist(fresh, browser):
    page = browser
    page.events.clear()
    clicked = []
    with ReviewServer(fresh, port=0, mode="turing", reviewer="alice") as srv:
        page.open(srv.url)
        assert page.eval("document.querySelectorAll('.pane').length") == 1
        for k in range(8):
            dom = page.eval("document.documentElement.outerHTML").encode()
            assert not any(s in dom for s in secrets_of(fresh) if s != b"augmented"), k
            # what describes the image (the panes, the header, the status line) never says what it is
            shown_text = page.eval("['viewer', 'status', 'item-title', 'progress'].map(i => "
                                   "document.getElementById(i).outerHTML).join(' ')").lower().encode()
            assert not any(s.lower() in shown_text for s in secrets_of(fresh)), k
            shown = page.eval("document.body.dataset.shown")
            kind = "augmented" if k % 2 else "real"
            page.key(str(k % 5 + 1))
            page.key("a" if kind == "augmented" else "r")
            clicked.append((int(shown), kind, k % 5 + 1))
            page.wait_for(f"document.getElementById('progress').textContent.startsWith('{k + 1} / 8')")
            page.settle()
        assert "All 8 images answered" in page.eval("document.getElementById('status').textContent")
        responses = [e["params"] for e in page.events if e["method"] == "Network.responseReceived"
                     and "/api/" in e["params"]["response"]["url"]]
        assert len(responses) >= 8 * 3  # deck, then meta and a plane per image, and the answers
        for r in responses:
            body = page.send("Network.getResponseBody", requestId=r["requestId"])
            data = base64.b64decode(body["body"]) if body["base64Encoded"] else body["body"].encode()
            assert not any(s in data for s in secrets_of(fresh)), r["response"]["url"]
        deck = [i["token"] for i in get_json(srv, "/api/turing/deck")["items"]]
    items = dict(TuringStore(fresh).deck("alice", list(turing_items(read_samples(fresh))[0])))
    stored = {a["item"]: (a["answer"], a["confidence"]) for a in TuringStore(fresh).all()}
    assert stored == {items[deck[pos]]: (kind, conf) for pos, kind, conf in clicked}
    with ReviewServer(fresh, port=0, mode="turing", reviewer="alice") as again:  # a restart keeps every answer
        page.open(again.url)
        assert page.eval("document.getElementById('progress').textContent") == "8 / 8 answered"
        first_kind, first_conf = next((kind, conf) for pos, kind, conf in clicked if pos == 0)
        assert page.eval("document.getElementById('status').textContent") == \
            f"Your answer: {first_kind} (confidence {first_conf})"


def test_arrow_keys_do_not_change_the_confidence_chosen_with_the_mouse(fresh, browser):
    """A reader who clicks confidence 4 and steps with ← / → still answers with confidence 4 (the focused radio
    button moved with the arrow keys: the answer was saved with another confidence)."""
    page = browser
    with ReviewServer(fresh, port=0, mode="turing", reviewer="carol") as srv:
        page.open(srv.url)
        x, y = page.eval("(() => { const r = document.querySelector('input[name=confidence][value=\"4\"]')"
                         ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        page.mouse("mousePressed", x, y, button="left", buttons=1, clickCount=1)
        page.mouse("mouseReleased", x, y, button="left", buttons=0, clickCount=1)
        page.settle()
        assert page.eval("document.activeElement.value") == "4"
        for key in ("ArrowRight", "ArrowRight", "ArrowLeft"):
            page.key(key)
            page.settle()
        assert page.eval("document.getElementById('item-title').textContent") == "Image 2 of 8"
        assert page.eval("document.querySelector('input[name=confidence]:checked').value") == "4"
        page.key("a")
        page.wait_for("document.getElementById('progress').textContent.startsWith('1 / 8')")
        page.settle()
    assert [(a["answer"], a["confidence"]) for a in TuringStore(fresh).all()] == [("augmented", 4)]

"""The review page's verdict modes over HTTP: API, verdict store, blind mode, summary, path traversal, the CLI."""

from __future__ import annotations

import json
import urllib.request

import pytest

from medaug.cli.main import main as cli_main
from medaug.preview.review import ReviewServer, VerdictStore, summarize

from ._util import call, cli_server, get_json, post_verdict

PNG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- API
def test_samples_slices_and_page(server):
    listing = get_json(server, "/api/samples")
    ids = [s["id"] for s in listing["samples"]]
    assert sorted(ids) == sorted(f"{c}:{i}" for c in ("slice", "vol") for i in range(3))
    assert listing["mode"] == "blind"
    meta = get_json(server, "/api/meta?sample=vol:1")
    assert meta["ndim"] == 3 and [p["shape"] for p in meta["planes"]] == [[16, 16]] * 3
    assert meta["windows"][0]["width"] > 0
    post_verdict(server, "vol:1", "realistic")  # blind: the original only after the verdict
    post_verdict(server, "slice:0", "realistic")
    for which in ("original", "augmented"):
        for axis in (0, 1, 2):
            status, ctype, png = call(server, f"/api/slice?sample=vol:1&which={which}&axis={axis}&index=7&window=-100,200")
            assert status == 200 and ctype == "image/png" and png.startswith(PNG)
    status, ctype, png = call(server, "/api/slice?sample=slice%3A0&which=original")  # encoded ':' and defaults
    assert status == 200 and png.startswith(PNG)
    status, ctype, page = call(server, "/")
    assert status == 200 and b"btn-realistic" in page and ctype.startswith("text/html")
    for name in ("review.js", "viewer.js", "turing.js", "review.css", "turing.html"):
        assert call(server, f"/static/{name}")[0] == 200


def test_verdict_progress_and_restart(folder, server):
    assert get_json(server, "/api/progress") == {"total": 6, "reviewed": 0, "realistic": 0, "not_realistic": 0, "reviewer": ""}
    out = post_verdict(server, "vol:0", "realistic", "fine")
    assert out["progress"]["reviewed"] == 1
    post_verdict(server, "slice:2", "not_realistic", "edges look stretched")
    post_verdict(server, "slice:2", "not_realistic", "changed my mind about the comment")  # replaces, not adds
    assert get_json(server, "/api/progress")["reviewed"] == 2
    server.stop()
    again = ReviewServer(folder, port=0).start()  # a new server on the same folder
    try:
        assert again.app.store.journal_mode() == "wal"
        progress = get_json(again, "/api/progress")
        assert (progress["reviewed"], progress["realistic"], progress["not_realistic"]) == (2, 1, 1)
        by_id = {s["id"]: s for s in get_json(again, "/api/samples")["samples"]}
        assert by_id["slice:2"]["verdict"] == "not_realistic"
        assert by_id["slice:2"]["comment"] == "changed my mind about the comment"
        assert by_id["vol:1"]["verdict"] is None
    finally:
        again.stop()
    assert (folder / "review.sqlite").exists()


def test_blind_mode_hides_transforms_until_verdict(folder, server):
    _, _, raw = call(server, "/api/samples")
    assert b"Affine" not in raw and b"Noise" not in raw and b"rot" not in raw
    assert b"Affine" not in call(server, "/api/meta?sample=vol:2")[2]
    assert call(server, "/api/meta?sample=vol:2&which=original")[0] == 403  # no original before the verdict
    out = post_verdict(server, "vol:2", "realistic")
    assert out["sample"]["transforms"] == ["Affine", "Noise"] and "rot" in out["sample"]["description"]
    items = get_json(server, "/api/samples")["samples"]
    shown = [s["id"] for s in items if "transforms" in s]
    assert shown == ["vol:2"]
    assert call(server, "/api/meta?sample=vol:2&which=original")[0] == 200
    open_srv = ReviewServer(folder, port=0, mode="open").start()
    try:
        listing = get_json(open_srv, "/api/samples")
        assert listing["mode"] == "open" and all(s["transforms"] == ["Affine", "Noise"] for s in listing["samples"])
    finally:
        open_srv.stop()


def test_reviewer_names_keep_verdicts_apart(folder):
    with ReviewServer(folder, port=0, reviewer="dr_a") as a:
        post_verdict(a, "vol:0", "realistic")
    with ReviewServer(folder, port=0, reviewer="dr_b") as b:
        assert get_json(b, "/api/progress")["reviewed"] == 0
        post_verdict(b, "vol:0", "not_realistic")
    assert sorted((v["reviewer"], v["verdict"]) for v in VerdictStore(folder).all()) == [
        ("dr_a", "realistic"), ("dr_b", "not_realistic")]


def test_summary_numbers(folder, server, capsys):
    # rotation -1 (0-3 deg): both realistic; 4 (3-6): one of two; 8 (6-10): none
    verdicts = {"slice:0": "realistic", "vol:0": "realistic", "slice:1": "realistic", "vol:1": "not_realistic",
                "slice:2": "not_realistic", "vol:2": "not_realistic"}
    for sid, v in verdicts.items():
        post_verdict(server, sid, v)
    rows = summarize(folder)
    table = {(r.transform, r.parameter, r.range): (r.judged, r.realistic) for r in rows}
    assert table[("Affine", "", "")] == (6, 3)
    assert table[("Affine", "|rotation| (deg)", "0–3°")] == (2, 2)
    assert table[("Affine", "|rotation| (deg)", "3–6°")] == (2, 1)
    assert table[("Affine", "|rotation| (deg)", "6–10°")] == (2, 0)
    assert table[("Noise", "", "")] == (6, 3)
    noise_bins = [v for (t, p, _), v in table.items() if t == "Noise" and p == "std"]
    assert [n for n, _ in noise_bins] == [2, 2, 2]  # terciles of six distinct values
    assert cli_main(["review", str(folder), "--summary"]) == 0
    text = capsys.readouterr().out
    assert "6 of 6 sample(s) judged" in text
    assert any(line.split()[-4:] == ["2", "1", "50%", "9%–91%"] and "3–6°" in line for line in text.splitlines())


def test_summary_without_verdicts_and_cli_errors(folder, tmp_path, capsys):
    assert cli_main(["review", str(folder), "--summary"]) == 0
    assert "no verdicts yet" in capsys.readouterr().out
    assert cli_main(["review", str(tmp_path / "nowhere"), "--summary"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medaug review: error:") and len(err.strip().splitlines()) == 1


TRAVERSALS = [
    "/api/slice?sample=../../etc/passwd",
    "/api/slice?sample=..%2f..%2fetc%2fpasswd&which=original",
    "/api/slice?sample=/etc/passwd&which=original",
    "/api/meta?sample=/etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/static/..%2f..%2fsetup.py",
    "/static/%252e%252e/x",
    "/static/%252e%252e%252fpyproject.toml",
    "//etc/passwd",
    "/static//etc/passwd",
    "/static/..\\..\\pyproject.toml",
    "/static/%5c..%5cpyproject.toml",
    "/static/..%5c..%5cpyproject.toml",
    "/static/%2e%2e%5c%2e%2e%5cpyproject.toml",
    "/etc/passwd",
    "/static/etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/manifest.csv",
    "/review.sqlite",
    "/images/vol_aug000.nii.gz",
    "/static/../server.py",
    "/static/index.html%00.py",
    "/api/../api/samples",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_file_outside_the_routes(server, method):
    secrets = (b"root:", b"[project]", b"build-backend", b"case_id,index", b"SQLite format")
    for path in TRAVERSALS:
        status, ctype, body = call(server, path, b"{}" if method == "POST" else None, method=method)
        assert status in (403, 404), (path, status)
        assert ctype == "application/json" and "error" in json.loads(body), path
        assert not any(s in body for s in secrets), path


def test_bad_requests_get_clear_4xx(server):
    cases = [
        ("/api/verdict", b"{not json", 400),
        ("/api/verdict", b"\xff\xfe", 400),
        ("/api/verdict", [1, 2], 400),
        ("/api/verdict", {"sample": "vol:0", "verdict": "maybe"}, 400),
        ("/api/verdict", {"sample": "vol:0"}, 400),
        ("/api/verdict", {"sample": "vol:0", "verdict": "realistic", "comment": 5}, 400),
        ("/api/verdict", {"sample": "vol:0", "verdict": "realistic", "extra": 1}, 400),
        ("/api/verdict", {"sample": "nope:9", "verdict": "realistic"}, 404),
        ("/api/verdict", b"x" * (70 * 1024), 413),
        ("/api/slice", None, 400),  # no sample
        ("/api/slice?sample=nope:1", None, 404),
        ("/api/slice?sample=vol:0&which=both", None, 400),
        ("/api/slice?sample=vol:0&axis=3", None, 400),
        ("/api/slice?sample=vol:0&axis=x", None, 400),
        ("/api/slice?sample=vol:0&axis=0&index=16", None, 400),
        ("/api/slice?sample=vol:0&axis=0&index=-1", None, 400),
        ("/api/slice?sample=slice:0&axis=1", None, 400),
        ("/api/slice?sample=vol:0&window=5,1", None, 400),
        ("/api/slice?sample=vol:0&window=nan,1", None, 400),
        ("/api/slice?sample=vol:0&window=abc", None, 400),
        ("/api/slice?sample=vol:0&sample=vol:1", None, 400),
        ("/api/nothing", None, 404),
        ("/nothing", None, 404),
    ]
    for path, body, expected in cases:
        status, ctype, raw = call(server, path, body)
        assert status == expected, (path, body if not isinstance(body, bytes) else body[:20], status, raw[:200])
        assert ctype == "application/json" and json.loads(raw)["error"], path
    assert call(server, "/api/verdict", {"sample": "vol:0", "verdict": "realistic"}, ctype="text/plain")[0] == 415
    assert call(server, "/api/verdict")[0] == 405  # GET
    assert call(server, "/api/samples", method="PUT")[0] == 405
    assert call(server, "/api/samples", method="DELETE")[0] == 405
    assert call(server, "/api/samples", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    assert get_json(server, "/api/progress")["reviewed"] == 0  # nothing was stored by the bad requests


def test_cli_serves_prints_the_url_and_stops_on_ctrl_c(folder):
    with cli_server(str(folder), "--port", "0", "--mode", "open") as (proc, result):
        first = proc.stdout.readline()
        assert "6 sample(s), open mode" in first
        line = proc.stdout.readline()
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        with urllib.request.urlopen(url + "api/samples", timeout=10) as res:
            assert json.loads(res.read())["mode"] == "open"
    assert result["code"] == 0, result["err"]
    assert "stopped" in result["out"] and "Traceback" not in result["err"]

"""The reading view in headless Chromium: zoom, pan, fit, 1:1, window presets and drag, label overlay, readout,
markers, three planes, slices; blind verdicts; answers kept across a restart.

What is checked is what the reader sees: the pixels of the canvases and the text drawn over them.
"""

from __future__ import annotations

import re

from medaug.preview.review import ReviewServer

from ._util import get_json

# per pane canvas: a hash of its pixels, the mean grey, the number of coloured pixels (label overlay), and the
# centroid (CSS pixels) of the pixels brighter than 10
STATS = """(() => [...document.querySelectorAll('.pane canvas')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let hash = 0, sum = 0, coloured = 0, n = 0, sx = 0, sy = 0;
  for (let k = 0, i = 0; k < d.length; k += 4, i++) {
    hash = (Math.imul(hash, 31) + d[k] + 7 * d[k + 1] + 13 * d[k + 2]) >>> 0;
    sum += d[k];
    if (d[k] !== d[k + 1] || d[k + 1] !== d[k + 2]) coloured++;
    if (d[k] > 10) { n++; sx += i % c.width; sy += Math.floor(i / c.width); }
  }
  return {hash, mean: sum / (d.length / 4), coloured, cx: sx / n, cy: sy / n};
}))()"""


def stats(page) -> list[dict]:
    return page.eval(STATS)


def texts(page, selector: str) -> list[str]:
    return page.eval(f"[...document.querySelectorAll('{selector}')].map(e => e.textContent)")


def centre(page, k: int) -> tuple[float, float]:
    box = page.eval(f"(() => {{ const r = document.querySelectorAll('.pane canvas')[{k}].getBoundingClientRect(); "
                    "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    return box[0], box[1]


def drag(page, x: float, y: float, dx: float, dy: float, button: str = "left") -> None:
    buttons = {"left": 1, "right": 2}[button]
    page.mouse("mousePressed", x, y, button=button, buttons=buttons, clickCount=1)
    for step in (0.5, 1.0):
        page.mouse("mouseMoved", x + dx * step, y + dy * step, button=button, buttons=buttons)
    page.mouse("mouseReleased", x + dx, y + dy, button=button, buttons=0, clickCount=1)
    page.settle()


def click_button(page, text: str) -> None:
    page.eval(f"[...document.querySelectorAll('button')].find(b => b.textContent === '{text}').click()")
    page.settle()


def show(page, sample: str) -> None:
    """Step with → until the open-mode title names ``sample``."""
    for _ in range(8):
        if f"({sample})" in page.eval("document.getElementById('sample-title').textContent"):
            return
        page.key("ArrowRight")
        page.settle()
    raise AssertionError(f"sample {sample} not reached")


def test_zoom_pan_fit_windows_labels_readout(folder, browser):
    page = browser
    with ReviewServer(folder, port=0, mode="open") as srv:
        page.open(srv.url)
        show(page, "slice:0")  # 2D, with a label map; a phantom in HU, so a CT folder
        first = stats(page)
        assert len(first) == 2 and all(s["coloured"] > 0 for s in first)  # labels drawn on both
        assert texts(page, ".pane-caption") == ["Original", "Augmented"]
        assert [texts(page, f".marker-{side}")[0] for side in ("left", "right", "top", "bottom")] == ["R", "L", "A", "P"]
        shortcuts = page.eval("document.getElementById('shortcuts').textContent")
        assert "zoom at the pointer" in shortcuts and "R / N" in shortcuts and "label overlay" in shortcuts

        # pan: both images move by the drag, the original too (linked)
        x, y = centre(page, 1)
        drag(page, x, y, 40, 20)
        moved = stats(page)
        for before, after in zip(first, moved):
            assert abs(after["cx"] - before["cx"] - 40) < 1.5 and abs(after["cy"] - before["cy"] - 20) < 1.5

        # zoom with the wheel: both panes magnified alike
        page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-300)
        page.settle()
        zoomed = stats(page)
        assert all(z["hash"] != m["hash"] for z, m in zip(zoomed, moved))
        status = texts(page, ".pane-status")
        assert status[0] == status[1]
        ratio = float(re.search(r"([\d.]+) px/voxel", status[0]).group(1))

        page.key("f")  # fit: exactly the first picture again
        page.settle()
        assert [s["hash"] for s in stats(page)] == [s["hash"] for s in first]
        fit_ratio = float(re.search(r"([\d.]+) px/voxel", texts(page, ".pane-status")[0]).group(1))
        assert ratio > 1.4 * fit_ratio
        page.key("z")  # 1:1
        page.settle()
        assert all("1.00 px/voxel" in t for t in texts(page, ".pane-status"))
        page.key("f")
        page.settle()

        # window presets change the rendering; the bone window darkens soft tissue
        assert "W 400 L 40" in texts(page, ".pane-status")[0]  # abdomen, the CT default
        click_button(page, "bone")
        bone = stats(page)
        assert "W 1800 L 400" in texts(page, ".pane-status")[0]
        assert all(b["hash"] != f["hash"] and b["mean"] < f["mean"] for b, f in zip(bone, first))
        assert page.eval("document.querySelector('button.preset.active').textContent") == "bone"
        page.key("w")
        page.settle()
        assert page.eval("document.querySelector('button.preset.active').textContent") == "auto"
        drag(page, x, y, 80, -40, button="right")  # window by hand
        assert page.eval("document.querySelector('button.preset.active')") is None
        assert all(d["hash"] != b["hash"] for d, b in zip(stats(page), bone))
        click_button(page, "abdomen")
        assert [s["hash"] for s in stats(page)] == [s["hash"] for s in first]

        # label overlay: off, on, and its opacity
        page.key("l")
        page.settle()
        assert all(s["coloured"] == 0 for s in stats(page))
        page.key("l")
        page.settle()
        assert [s["hash"] for s in stats(page)] == [s["hash"] for s in first]
        page.eval("const o = document.querySelector('input[type=range][title=\"overlay opacity\"]'); o.value = '0';"
                  " o.dispatchEvent(new Event('input'))")
        page.settle()
        assert all(s["coloured"] == 0 for s in stats(page))

        # value under the pointer, in HU
        page.mouse("mouseMoved", x, y)
        page.settle()
        readout = texts(page, ".pane-readout")[1]
        assert re.fullmatch(r"\(\d+, \d+\)\s+-?[\d.]+ HU(\s+label \d+)?", readout), readout


def test_three_planes_slices_and_pointing(folder, browser):
    page = browser
    with ReviewServer(folder, port=0, mode="open") as srv:
        page.open(srv.url)
        show(page, "vol:1")
        assert texts(page, ".pane-status")[0].startswith("axial 9/16")
        page.key("t")
        page.settle()
        status = texts(page, ".pane-status")
        assert len(status) == 6 and [s.split()[0] for s in status] == ["axial", "coronal", "sagittal"] * 2
        assert [texts(page, f".marker-{side}")[2] for side in ("left", "right", "top", "bottom")] == ["A", "P", "S", "I"]
        x, y = centre(page, 0)
        page.mouse("mouseWheel", x, y, deltaX=0, deltaY=120, modifiers=8)  # Shift+wheel on the axial plane: a slice on
        page.settle()
        status = texts(page, ".pane-status")
        assert status[0].startswith("axial 10/16") and status[3].startswith("axial 10/16")  # linked
        page.key("ArrowDown")  # the plane under the pointer
        page.key("ArrowDown")
        page.settle()
        assert texts(page, ".pane-status")[0].startswith("axial 8/16")
        before = texts(page, ".pane-status")
        page.mouse("mousePressed", x - 60, y + 50, button="left", buttons=1, clickCount=1)
        page.mouse("mouseReleased", x - 60, y + 50, button="left", buttons=0, clickCount=1)
        page.settle()
        after = texts(page, ".pane-status")
        assert after[0] == before[0]  # the axial slice stays; coronal and sagittal move to the point
        assert after[1].split(" · ")[0] != before[1].split(" · ")[0] and after[2].split(" · ")[0] != before[2].split(" · ")[0]
        page.key("p")  # one plane: the next one
        page.settle()
        assert [s.split()[0] for s in texts(page, ".pane-status")] == ["coronal", "coronal"]


def test_blind_verdict_reveals_the_original_and_survives_a_restart(folder, browser):
    page = browser
    page.events.clear()
    with ReviewServer(folder, port=0) as srv:
        page.open(srv.url)
        assert texts(page, ".pane-caption") == ["Augmented (blind)"]
        assert "after your verdict" in page.eval("document.getElementById('reveal').textContent")
        page.eval("document.getElementById('comment').value = 'looks like a real scan'")
        page.eval("document.querySelector('#btn-realistic').click()")
        page.wait_for("document.getElementById('status').textContent.startsWith('Saved')")
        page.settle()
        assert texts(page, ".pane-caption") == ["Original", "Augmented"]
        assert "rot" in page.eval("document.getElementById('reveal').textContent")
        judged = [s for s in get_json(srv, "/api/samples")["samples"] if s["verdict"]]
        assert len(judged) == 1 and judged[0]["comment"] == "looks like a real scan"
        urls = [e["params"]["request"]["url"] for e in page.events if e["method"] == "Network.requestWillBeSent"]
        first_original = next(k for k, u in enumerate(urls) if "which=original" in u)
        assert first_original > next(k for k, u in enumerate(urls) if u.endswith("/api/verdict"))
    with ReviewServer(folder, port=0) as again:
        page.open(again.url)
        assert page.eval("document.getElementById('progress').textContent").startswith("1 / 6 reviewed")
        page.eval("document.getElementById('view-grid').click()")
        page.wait_for("document.querySelectorAll('.card').length === 6")
        assert page.eval("document.querySelectorAll('.card.realistic').length") == 1
        assert page.eval("document.querySelectorAll('.card img').length") == 7  # the original of the judged one only


def test_readout_is_linked_and_never_stale(folder, browser):
    """The value under the pointer shows in every pane of that plane (the same place in the original and the
    augmented image), follows a slice change under a still pointer, and goes when the pointer leaves the image."""
    page = browser
    with ReviewServer(folder, port=0, mode="open") as srv:
        page.open(srv.url)
        show(page, "slice:0")
        x, y = centre(page, 1)
        page.mouse("mouseMoved", x, y)
        page.settle()
        readouts = texts(page, ".pane-readout")
        where = [re.match(r"\(\d+, \d+\)", r) for r in readouts]
        assert all(where) and where[0].group(0) == where[1].group(0), readouts  # same voxel, both panes
        side = page.eval("(() => { const r = document.getElementById('tools').getBoundingClientRect(); "
                         "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        page.mouse("mouseMoved", side[0], side[1])  # off the images: no value left behind
        page.settle()
        assert texts(page, ".pane-readout") == ["", ""]

        show(page, "vol:1")
        page.key("t")
        page.settle()
        x, y = centre(page, 3)  # the augmented image's axial plane
        page.mouse("mouseMoved", x, y)
        page.settle()
        readouts = texts(page, ".pane-readout")
        assert readouts[1:3] == ["", ""] and readouts[4:6] == ["", ""], readouts  # coronal, sagittal: not pointed at
        z = [int(re.match(r"\((\d+), (\d+), (\d+)\)", readouts[k]).group(3)) for k in (0, 3)]
        assert z[0] == z[1]
        page.key("ArrowUp")  # the pointer stays; the slice under it changes
        page.settle()
        readouts = texts(page, ".pane-readout")
        assert [int(re.match(r"\((\d+), (\d+), (\d+)\)", readouts[k]).group(3)) for k in (0, 3)] == [z[0] + 1] * 2


def test_shortcuts_listed_are_those_that_apply(folder, browser):
    """The key list names what works on the image shown: slices and planes for a volume, the label key where
    labels are drawn (never in the Turing test)."""
    page = browser

    def listed() -> str:
        return page.eval("[...document.querySelectorAll('#shortcuts tr')].filter(r => !r.hidden)"
                         ".map(r => r.textContent).join(' | ')")

    with ReviewServer(folder, port=0, mode="open") as srv:
        page.open(srv.url)
        show(page, "slice:0")
        keys = listed()
        assert "zoom at the pointer" in keys and "label overlay" in keys
        assert "slice" not in keys and "planes" not in keys
        show(page, "vol:1")
        keys = listed()
        assert "slice" in keys and "one or three planes" in keys and "label overlay" in keys
    with ReviewServer(folder, port=0, mode="turing", reviewer="keys") as srv:
        page.open(srv.url)
        seen = set()
        for _ in range(8):
            keys = listed()
            assert "label overlay" not in keys and "answer: real / augmented" in keys
            seen.add("slice" in keys)
            page.key("ArrowRight")
            page.settle()
        assert seen == {True, False}  # 2D and 3D images in the deck

"""report.html in a real browser: Debian's chromium, headless, loading the page from disk.

Screenshots of the line table, the ops tables and the timeline (at 1280 px) go to
$TRAINPROF_ARTIFACTS where that is set, else to the test's tmp_path."""
import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import time

import pytest

from conftest import ROOT, SAMPLES, SCRIPTS, run_cli

pytestmark = pytest.mark.slow  # Chromium renders every sample report

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
RUNS = sorted(d for d in os.listdir(SAMPLES) if os.path.isdir(os.path.join(SAMPLES, d)))


with open(os.path.join(ROOT, "templates", "report.js"), encoding="utf-8") as _f:
    JS = _f.read()  # the page's one script, as it must appear there
JS_SOURCE = "sha256-" + base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()


def without_our_script(page: str) -> str:
    """The page less its one script -- report.js byte for byte, allowed by the page's content
    security policy by its hash, which allows nothing else -- after checking that."""
    tag = f"<script>{JS}</script>"
    assert page.count(tag) == 1
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page).group(1)
    rules = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert rules["default-src"] == ["'none'"] and rules["script-src"] == [f"'{JS_SOURCE}'"]
    rest = page.replace(tag, "")
    assert "<script" not in rest.lower()
    return rest


def browse(html: str, tmp, screenshot: str | None = None) -> tuple[str, list[str]]:
    """(the DOM after load, the console messages) of a page opened from a file."""
    args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            f"--user-data-dir={tmp}/profile", "--enable-logging=stderr", "--v=0", "--window-size=1440,900"]
    url = "file://" + os.path.abspath(html)
    p = subprocess.run(args + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    console = [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]
    if screenshot:
        subprocess.run(args + [f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    return p.stdout, console


def _report(run: str, tmp) -> str:
    out = str(tmp / f"{run}.html")
    copy = tmp / "runs" / run  # `report` writes analysis.json into the run: not into the repo's samples
    shutil.copytree(os.path.join(SAMPLES, run), copy)
    r = run_cli("report", str(copy), "-q", "--html", out, "--json", str(tmp / f"{run}.json"))
    assert r.returncode == 0, r.stderr
    return out


def test_every_sample_report_is_self_contained(tmp_path):
    for run in RUNS:
        page = open(_report(run, tmp_path)).read()
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|ftp:)""", page, re.I), run
        without_our_script(page)  # nothing runs on the page but report.js


@needs_chromium
@pytest.mark.parametrize("run", RUNS)
def test_sample_report_renders_in_chromium(run, tmp_path):
    shot = str(tmp_path / f"{run}.png") if run in ("host_alloc", "ddp_accum") else None
    dom, console = browse(_report(run, tmp_path), tmp_path, shot)
    assert console == [], console  # no errors, no blocked loads, nothing logged
    assert "<h1>" in dom and "Findings, ranked by the time they cost" in dom
    assert 'id="timeline"' in dom and "training thread" in dom
    assert "Open the trace in TensorBoard" in dom and "Checked" in dom
    if run == "host_alloc":  # a GPU run: a stream lane, a fix's diff and its command
        assert "GPU stream" in dom and 'class="diff"' in dom and "trainprof apply" in dom
        assert os.path.getsize(shot) > 20_000  # a real picture of the page
    if run == "ddp_accum":  # 2 ranks: their table, and lanes of each rank's collectives
        assert 'id="ranks"' in dom and "rank 1 · training thread" in dom
        waits = {r: _widths(dom, f"rank {r} · collectives", "comm_wait") for r in (0, 1)}
        assert waits[0] > 0.2 and waits[0] > 5 * waits[1]  # rank 0 waits for the straggler, rank 1 does not
        assert os.path.getsize(shot) > 20_000


def _widths(dom: str, lane: str, kind: str) -> float:
    """The share of a lane's width drawn as `kind`."""
    svg = re.search(r'<svg[^>]*aria-label="' + re.escape(lane) + r'".*?</svg>', dom, re.S).group(0)
    return sum(float(w) for w in re.findall(r'<rect class="' + kind + r'" x="[\d.]+" y="0" width="([\d.]+)"', svg)) / 1000


@needs_chromium
def test_hostile_names_render_inert(tmp_path):
    """A directory and a script named like markup: shown as text, never run."""
    d = tmp_path / "<img src=x onerror=document.title='pwned'>"
    d.mkdir()
    script = d / "<script>document.title='pwned'<!--.py"
    shutil.copyfile(os.path.join(SCRIPTS, "two_items.py"), script)
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), "--wait", "3", "--settle", "0", "--warmup", "1", "--active", "2", "-q", str(script))
    assert r.returncode == 0, r.stderr
    dom, console = browse(str(out / "report.html"), tmp_path)
    assert console == [], console
    assert "<title>trainprof: &lt;script&gt;document.title='pwned'&lt;!--.py</title>" in dom
    assert "pwned</title>" not in dom.replace("&lt;!--.py</title>", "")
    assert not re.search(r"<img[^>]*onerror", dom)
    without_our_script(dom)
    assert "&lt;img src=x onerror=" in dom  # the name is there, as text


# the page's script: the timeline's zoom, the tables and commands, at 1280 px

WIDTH = 1280


@pytest.fixture(scope="module")
def gpu_page(tmp_path_factory):
    """host_alloc's report: a GPU run with a stream lane, fixes with commands, lines and ops."""
    return _report("host_alloc", tmp_path_factory.mktemp("page"))


@pytest.fixture
def browser(tmp_path):
    from cdp import Browser

    b = Browser(str(tmp_path / "profile"), size=(WIDTH, 900))
    yield b
    b.close()


@pytest.fixture
def artifacts(tmp_path):
    d = os.environ.get("TRAINPROF_ARTIFACTS") or str(tmp_path)
    os.makedirs(d, exist_ok=True)
    return d


def _open(b, page: str) -> None:
    b.goto("file://" + os.path.abspath(page))
    assert b.wait_for("document.readyState === 'complete' && !document.getElementById('timeline-zoom').hidden")


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@needs_chromium
def test_screenshots_of_the_tables_and_the_timeline(gpu_page, browser, artifacts):
    b = browser
    _open(b, gpu_page)
    assert b.js("document.documentElement.scrollWidth") <= WIDTH  # nothing sticks out at 1280 px
    for sel, rows in (("#line-table", 10), ("#ops-gpu", 15), ("#ops-cpu", 15)):
        assert b.js(f"document.querySelectorAll('{sel} tr').length") == rows + 1, sel  # a heading row
        # each table fits its column: long kernel names are cut with an ellipsis, not overflowing
        assert b.js(f"document.querySelector('{sel}').scrollWidth <= document.querySelector('{sel}').clientWidth + 1")
    assert b.js("document.querySelector('#line-table td:nth-child(5)').textContent") == "x = data[step % len(data)].to(device)"
    shots = {}
    for sel, name in (("#lines", "lines"), ("#ops", "ops"), ("#timeline-section", "timeline")):
        path = os.path.join(artifacts, f"report_{name}_{WIDTH}px.png")
        box = b.screenshot_of(sel, path)
        w, h = _png_size(path)
        assert w == round(box["width"]) + 16 and h >= 150, (name, w, h)
        assert box["width"] > WIDTH - 200  # the page's width at 1280 px, less its margins
        assert os.path.getsize(path) > 15_000, name  # a picture of something, not a blank box
        shots[name] = path
    b.js("document.querySelector('#timeline-zoom [data-zoom=in]').click();"
         "document.querySelector('#timeline-zoom [data-zoom=in]').click()")
    b.screenshot_of("#timeline-section", os.path.join(artifacts, f"report_timeline_zoomed_{WIDTH}px.png"))
    print("\n" + "\n".join(shots.values()))


def _view(b, tl="timeline") -> dict:
    return b.js(f"""(() => {{
        const t = document.getElementById('{tl}');
        return {{a: +t.dataset.a, b: +t.dataset.b,
                 boxes: [...t.querySelectorAll('svg')].map(s => s.getAttribute('viewBox')),
                 ticks: [...t.querySelectorAll('.ticks span')].map(s => parseFloat(s.textContent)),
                 label: document.querySelector('#{tl}-zoom .range').textContent, scroll: scrollY}}; }})()""")


def _lane_box(b) -> dict:
    return b.js("(() => { const r = document.querySelector('#timeline svg').getBoundingClientRect();"
                " return {x: r.left, y: r.top, w: r.width, h: r.height}; })()")


def _settle(b, before: dict, tl="timeline", wait: float = 5.0) -> dict:
    """The view once it differs from `before` (input events are handled asynchronously), or
    after `wait` seconds."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        v = _view(b, tl)
        if (v["a"], v["b"], v["scroll"]) != (before["a"], before["b"], before["scroll"]):
            return v
        time.sleep(0.05)
    return _view(b, tl)


@needs_chromium
def test_the_timeline_zooms_and_pans(gpu_page, browser):
    """Real input through the browser: a wheel over a lane zooms about the pointer, a drag and
    the buttons pan, the lanes and the time axis follow, and a wheel down at the whole step
    scrolls the page as usual."""
    b = browser
    _open(b, gpu_page)
    ms = float(b.js("document.getElementById('timeline').dataset.ms"))
    b.js("document.getElementById('timeline').scrollIntoView({block: 'center'})")
    v0 = _view(b)
    assert (v0["a"], v0["b"]) == (0.0, 1.0) and set(v0["boxes"]) == {"0.0000 0 1000.0000 18", "0.0000 0 1000.0000 10"}
    lane = _lane_box(b)
    x, y = lane["x"] + 0.25 * lane["w"], lane["y"] + lane["h"] / 2
    b.mouse("mouseMoved", x, y)
    b.mouse("mouseWheel", x, y, deltaX=0, deltaY=-600)  # two notches up: zoom in 4x
    v1 = _settle(b, v0)
    assert v1["b"] - v1["a"] == pytest.approx(0.25, rel=1e-3)  # the visible range narrowed
    assert (0.25 - v1["a"]) / (v1["b"] - v1["a"]) == pytest.approx(0.25, abs=0.01)  # the time under the pointer stayed
    assert v1["scroll"] == v0["scroll"]  # the wheel zoomed, the page did not scroll
    for box in v1["boxes"]:  # every lane, the findings' marks too, shows that range
        x0, _, w, _ = map(float, box.split())
        assert x0 == pytest.approx(1000 * v1["a"], abs=1e-2) and w == pytest.approx(1000 * (v1["b"] - v1["a"]), abs=1e-2)
    assert v1["ticks"][0] >= v1["a"] * ms - 1e-6 and v1["ticks"][-1] <= v1["b"] * ms + 1e-6 and len(v1["ticks"]) >= 4
    lo, hi, step = map(float, re.findall(r"[\d.]+", v1["label"]))  # "1.81 – 4.22 ms of 9.65 ms"
    assert lo == pytest.approx(v1["a"] * ms, abs=0.01 * ms) and hi == pytest.approx(v1["b"] * ms, abs=0.01 * ms)
    assert step == pytest.approx(ms, rel=0.01)

    # a drag to the left shows later time: by the dragged share of the visible range
    b.mouse("mousePressed", x, y, button="left", clickCount=1)
    b.mouse("mouseMoved", x - 0.2 * lane["w"], y, button="left")
    b.mouse("mouseReleased", x - 0.2 * lane["w"], y, button="left", clickCount=1)
    v2 = _settle(b, v1)
    assert v2["b"] - v2["a"] == pytest.approx(0.25, rel=1e-3)  # panning keeps the zoom
    assert v2["a"] - v1["a"] == pytest.approx(0.2 * 0.25, abs=0.003)

    def click(action, wait=5.0):
        r = b.js(f"(() => {{ const r = document.querySelector('#timeline-zoom [data-zoom={action}]').getBoundingClientRect();"
                 " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        before = _view(b)
        b.mouse("mousePressed", *r, button="left", clickCount=1)
        b.mouse("mouseReleased", *r, button="left", clickCount=1)
        return _settle(b, before, wait=wait)

    v3 = click("earlier")
    assert v3["a"] == pytest.approx(v2["a"] - 0.25 * 0.25, abs=1e-4) and v3["b"] - v3["a"] == pytest.approx(0.25, rel=1e-3)
    v4 = click("in")
    assert v4["b"] - v4["a"] == pytest.approx(0.125, rel=1e-3)
    for _ in range(6):  # as deep as it goes: 1/512 of the step
        v = click("in")
    assert v["b"] - v["a"] == pytest.approx(1 / 512, rel=1e-3)
    same = click("in", wait=0.5)
    assert (same["a"], same["b"]) == (v["a"], v["b"])  # no deeper
    b.mouse("mouseWheel", x, y, deltaX=lane["w"] / 2, deltaY=0)  # sideways: pans by as many pixels
    moved = _settle(b, v)
    assert moved["a"] - v["a"] == pytest.approx(0.5 / 512, rel=0.01) and moved["b"] - moved["a"] == pytest.approx(1 / 512, rel=1e-3)
    for _ in range(7):
        v = click("out")
    assert v["b"] - v["a"] == pytest.approx(0.25, rel=1e-3)
    for _ in range(12):  # held at the step's end
        v = click("later", wait=0.3)
    assert v["b"] == pytest.approx(1.0) and v["b"] - v["a"] == pytest.approx(0.25, rel=1e-3)
    assert max(v["ticks"]) <= ms + 1e-6
    v5 = click("all")
    assert (v5["a"], v5["b"]) == (0.0, 1.0)

    # the whole step shown: a wheel down over the lanes scrolls the page
    b.mouse("mouseWheel", x, y, deltaX=0, deltaY=300)
    v6 = _settle(b, v5)
    assert (v6["a"], v6["b"]) == (0.0, 1.0) and v6["scroll"] > v5["scroll"]
    assert b.console == [] or all(c["method"] != "Runtime.exceptionThrown" for c in b.console), b.console


@needs_chromium
def test_the_policy_blocks_any_other_script(gpu_page, browser, tmp_path):
    """Markup that slipped past escaping would not run: the policy allows report.js by its hash,
    and nothing else -- a script element, an inline handler."""
    page = open(gpu_page, encoding="utf-8").read()
    evil = tmp_path / "evil.html"
    evil.write_text(page.replace("</body>", "<script>document.title='pwned'</script>"
                                 "<img src=x onerror=\"document.title='pwned'\"></body>"), encoding="utf-8")
    b = browser
    _open(b, str(evil))  # report.js still ran: the zoom bar is shown
    time.sleep(0.5)
    assert b.js("document.title").startswith("trainprof: ") and "pwned" not in b.js("document.title")


@needs_chromium
def test_a_command_is_copied_whole(gpu_page, browser):
    b = browser
    _open(b, gpu_page)
    cmd = b.js("document.getElementById('apply-2').textContent")
    assert cmd.startswith("trainprof apply ") and cmd.endswith(" --fix 2")  # the finding by its number
    b.js("document.querySelector('[data-copy=apply-2]').click()")
    assert b.wait_for("document.querySelector('[data-copy=apply-2]').textContent !== 'copy'", 5)
    assert b.js("getSelection().toString()") == cmd  # selected (and copied where the browser lets it)


@needs_chromium
def test_keys_zoom_the_focused_timeline_and_each_timeline_zooms_alone(browser, tmp_path):
    """ddp_accum's page has two timelines (the step, and every rank's): keys act on the focused
    one only."""
    b = browser
    _open(b, _report("ddp_accum", tmp_path))
    assert b.js("!document.getElementById('rank-timeline-zoom').hidden")
    b.js("document.getElementById('rank-timeline').scrollIntoView({block: 'center'});"
         "document.getElementById('rank-timeline').focus()")

    def key(k, code=None, vk=0):
        before = _view(b, "rank-timeline")
        b.call("Input.dispatchKeyEvent", session=True, type="keyDown", key=k, code=code or k,
               windowsVirtualKeyCode=vk, **({"text": k} if len(k) == 1 else {}))
        b.call("Input.dispatchKeyEvent", session=True, type="keyUp", key=k, code=code or k, windowsVirtualKeyCode=vk)
        return _settle(b, before, "rank-timeline")

    key("+", "Equal", 187)
    v = key("+", "Equal", 187)
    assert (v["a"], v["b"]) == (pytest.approx(0.375), pytest.approx(0.625))  # twice 2x, about the middle
    v = key("ArrowRight", vk=39)
    assert (v["a"], v["b"]) == (pytest.approx(0.4375), pytest.approx(0.6875))
    assert (_view(b)["a"], _view(b)["b"]) == (0.0, 1.0)  # the step's timeline stayed as it was
    v = key("0", "Digit0", 48)
    assert (v["a"], v["b"]) == (0.0, 1.0)

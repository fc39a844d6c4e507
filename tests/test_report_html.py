"""report.html in a real browser: Debian's chromium, headless, loading the page from disk."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import SAMPLES, SCRIPTS, run_cli

pytestmark = pytest.mark.slow  # Chromium renders every sample report

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
RUNS = sorted(d for d in os.listdir(SAMPLES) if os.path.isdir(os.path.join(SAMPLES, d)))


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
        assert "<script" not in page.lower(), run  # nothing runs on the page
        assert "Content-Security-Policy" in page


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
    assert not re.search(r"<img[^>]*onerror", dom) and "<script" not in dom
    assert "&lt;img src=x onerror=" in dom  # the name is there, as text

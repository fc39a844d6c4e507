"""report.html shows whatever a trace or a script holds as text, never as markup, and stays
small however large the run: names from the trace and comments from the script that look like
markup or templates, huge names, text that is not UTF-8; a 50+ MB trace of 121 GPU streams;
hundreds of findings and 100 kB lines.
"""
import dataclasses
import gzip
import hashlib
import json
import os
import re
import shutil
import time

import pytest

from conftest import SAMPLES, SCRIPTS, run_cli
from test_report_html import browse, needs_chromium, without_our_script

MAX_PAGE = 3_000_000  # bytes: a report is read in a browser, mailed, attached to issues
HOSTILE = ["</script><script>alert(1)</script>", "{{ 7*7 }}{% raw %}", "<img src=x onerror=alert(2)>",
           "x\u202eevil\x00\x1b[31m\u0007", "A" * 100_000]


def _page_ok(page: str) -> None:
    """Nothing on the page runs or loads: no script but report.js, no handler, no remote address."""
    page = without_our_script(page)
    tags = re.sub(r'"[^"]*"', '""', page)  # attribute values out: autoescape leaves no raw quote in a text
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+\s*=", tags, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|javascript:)""", page, re.I)


def _copy_run(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(os.path.join(SAMPLES, name), run)
    (run / "analysis.json").unlink(missing_ok=True)
    return run


def _rewrite_trace(run, change) -> str:
    """Apply change(doc) to the run's trace (gzipped chrome-trace JSON); returns its path."""
    path = next(str(run / f) for f in os.listdir(run) if f.endswith(".pt.trace.json.gz"))
    with gzip.open(path, "rb") as f:
        doc = json.load(f)
    change(doc)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(json.dumps(doc).encode())
    return path


# hostile names and comments

@pytest.fixture(scope="module")
def hostile_cpu_run(tmp_path_factory):
    """A real CPU run of a script with hostile comments above its model (no-compile's line); then every op and
    Python-function name in its trace, and each thread's name, replaced by hostile text."""
    tmp = tmp_path_factory.mktemp("hostile")
    lines = open(os.path.join(SCRIPTS, "two_items.py")).read().splitlines(True)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("model = "))
    lines[at:at] = ["# </pre></code></section><script>alert('comment')</script>\n",
                        "# {{ 7*7 }} {% if 1 %}x{% endif %} ${7*7} <!--\n", "# " + "B" * 100_000 + "\n"]
    script = tmp / "hostile.py"
    script.write_text("".join(lines))
    run = tmp / "run"
    r = run_cli("analyze", "--run-dir", str(run), "--wait", "3", "--settle", "0", "--warmup", "1", "--active", "2", "-q", str(script))
    assert r.returncode == 0, r.stderr

    def rename(doc):
        n = 0
        for e in doc["traceEvents"]:
            if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "python_function"):
                e["name"] = f"{HOSTILE[n % len(HOSTILE)]}{n}"
                n += 1
            elif e.get("ph") == "M" and isinstance(e.get("args"), dict) and "name" in e["args"]:
                e["args"]["name"] = HOSTILE[0]
        assert n > 100
    _rewrite_trace(run, rename)
    out = tmp / "hostile.html"
    r = run_cli("report", str(run), "--script", str(script), "-q", "--html", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_hostile_names_and_comments_are_text(hostile_cpu_run):
    page = hostile_cpu_run.read_text(encoding="utf-8")
    _page_ok(page)
    assert "&lt;script&gt;alert(&#39;comment&#39;)&lt;/script&gt;" in page  # the comment, as text
    assert "{{ 7*7 }} {% if 1 %}x{% endif %} ${7*7} &lt;!--" in page  # data is never a template
    assert "B" * 300 in page and "B" * 1000 not in page and "more characters]" in page  # a line, clipped
    ops = page[page.index('id="ops-cpu"'):]
    ops = ops[:ops.index("</table>")]
    assert "<code>&lt;img src=x onerror=alert(2)&gt;" in ops  # the trace's op names, as text in the ops table
    assert len(page) < 100_000


@pytest.mark.slow
@needs_chromium
def test_hostile_page_renders_inert_in_chromium(hostile_cpu_run, tmp_path):
    dom, console = browse(str(hostile_cpu_run), tmp_path)
    assert console == [], console
    assert "<title>trainprof: hostile.py</title>" in dom
    without_our_script(dom)
    assert "Findings, ranked by the time they cost" in dom and 'id="timeline"' in dom


def test_hostile_names_from_a_gpu_trace_reach_the_page_as_text(tmp_path):
    """The optimizer's name comes from the trace into a finding's message and evidence."""
    run = _copy_run("launch_bound_adam", tmp_path)
    evil = "</script><script>alert(1)</script>{{ 7*7 }}<img src=x onerror=alert(2)>" + "A" * 100_000

    def rename(doc):
        n = 0
        for e in doc["traceEvents"]:
            if e.get("name", "").startswith("Optimizer.step#"):
                e["name"] = f"Optimizer.step#{evil}.step"
                n += 1
        assert n
    _rewrite_trace(run, rename)
    out = tmp_path / "adam.html"
    r = run_cli("report", str(run), "-q", "--html", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    _page_ok(page)
    assert "`&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}&lt;img src=x onerror=alert(2)&gt;AAAA" in page
    assert "A" * 3000 not in page and len(page) < 200_000  # the 100 kB name, clipped where it shows
    a = json.loads((run / "analysis.json").read_text())
    assert any(evil in f["message"] for f in a["findings"])  # analysis.json keeps it whole


def test_text_that_is_not_utf8(tmp_path):
    """Lone surrogates: in a trace (JSON escapes), and in an argument that was not UTF-8 (Python
    keeps its bytes as surrogates): a page that is valid UTF-8, or one clear line."""
    run = _copy_run("item_sync", tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["argv"] = ["--tag", "\udcff\udcfe"]
    (run / "run.json").write_text(json.dumps(meta))  # stored as \\udcff escapes, as the capture writes it
    from trainprof.engine import analyze
    from trainprof.report import html
    from trainprof.report.prepare import prepare

    out = tmp_path / "argv.html"
    html.write(prepare(analyze(str(run))), str(out))
    page = out.read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert "--tag \\udcff\\udcfe" in page
    _page_ok(page)

    def surrogates(doc):
        for e in doc["traceEvents"][:500]:
            if e.get("ph") == "X" and e.get("cat") == "cpu_op":
                e["name"] = "\udc80 lone \ud800 " + e["name"]
    _rewrite_trace(run, surrogates)
    r = run_cli("report", str(run), "-q", "--html", str(tmp_path / "s.html"), "--json", str(tmp_path / "s.json"))
    # msgspec refuses lone surrogate escapes; the loader decodes again with U+FFFD in their place
    assert r.returncode == 0, r.stderr
    _page_ok((tmp_path / "s.html").read_bytes().decode("utf-8"))
    doc = json.loads((tmp_path / "s.json").read_bytes())  # and the argv's surrogates escaped in analysis.json
    assert doc["argv"] == ["--tag", "\udcff\udcfe"]


# a very large run

STREAMS = 120  # copies of the drawn step's GPU work, each on a stream of its own


@pytest.fixture(scope="module")
def big_report(tmp_path_factory):
    """A real H100 run (per_sample_loss, 21 MB of trace) whose drawn step's GPU work is copied
    onto STREAMS more streams (every 4th kernel: fewer merge), for a 50+ MB trace; its report."""
    tmp = tmp_path_factory.mktemp("big")
    run = _copy_run("per_sample_loss", tmp)
    first = tmp / "first.html"
    r = run_cli("report", str(run), "-q", "--html", str(first))
    assert r.returncode == 0, r.stderr
    step = re.search(r"One step, ProfilerStep#(\d+)", first.read_text()).group(1)
    size = {}

    def widen(doc):
        ev = doc["traceEvents"]
        ps = next(e for e in ev if e.get("ph") == "X" and e.get("name") == f"ProfilerStep#{step}")
        lo, hi = ps["ts"], ps["ts"] + ps["dur"]
        gpu = [e for e in ev if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
               and lo <= e["ts"] < hi][::4]
        for j in range(STREAMS):
            for e in gpu:
                ev.append(dict(e, tid=1000 + j, args=dict(e.get("args") or {}, stream=1000 + j)))
        size["raw"] = len(json.dumps(doc))
    _rewrite_trace(run, widen)
    (run / "analysis.json").unlink(missing_ok=True)
    out = tmp / "big.html"
    t = time.perf_counter()
    r = run_cli("report", str(run), "-q", "--html", str(out))
    assert r.returncode == 0, r.stderr
    print(f"\nbig run: trace {size['raw'] / 1e6:.1f} MB, report {out.stat().st_size / 1e6:.2f} MB "
          f"in {time.perf_counter() - t:.1f} s")
    return out, size["raw"]


@pytest.mark.slow
def test_a_very_large_run_gives_a_bounded_report(big_report):
    out, raw = big_report
    assert raw > 50_000_000
    page = out.read_text(encoding="utf-8")
    assert len(page.encode()) < MAX_PAGE
    _page_ok(page)
    from trainprof.report.step_view import MAX_LANE_SEGMENTS, MAX_MARKED, MAX_STREAMS

    lanes = page.count('<svg viewBox="0 0 1000 18"')
    assert lanes == 1 + MAX_STREAMS  # the training thread and the busiest streams
    assert page.count("<rect") <= (lanes + MAX_MARKED) * (MAX_LANE_SEGMENTS + 1)
    assert f"{STREAMS + 1 - MAX_STREAMS} more GPU streams not drawn (the least busy" in page


@pytest.mark.slow
@needs_chromium
def test_a_very_large_run_renders_in_chromium(big_report, tmp_path):
    dom, console = browse(str(big_report[0]), tmp_path)
    assert console == [], console
    assert 'id="timeline"' in dom and "more GPU streams not drawn" in dom and "Findings, ranked" in dom


def test_many_findings_and_huge_lines_are_bounded(tmp_path):
    """Hundreds of findings with 100 kB messages, a script of 50 kB lines at a fix's site."""
    from trainprof.engine import analyze
    from trainprof.report import html
    from trainprof.report.prepare import MAX_FINDINGS, prepare

    run = _copy_run("item_sync", tmp_path)
    script = tmp_path / "item_sync.py"
    lines = open(os.path.join(SAMPLES, "item_sync", "item_sync.py")).read().splitlines(True)
    for i in (23, 24):  # the two .item() lines, where item-sync's diff goes (longer: slow to index, see the notes)
        lines[i] = lines[i].rstrip("\n") + "  # " + "C" * 50_000 + "\n"
    script.write_text("".join(lines))
    (run / "item_sync.py").unlink()
    meta = json.loads((run / "run.json").read_text())
    meta["script"] = str(script)
    meta["script_sha256"] = hashlib.sha256(script.read_bytes()).hexdigest()
    (run / "run.json").write_text(json.dumps(meta))
    a = analyze(str(run), script=str(script))
    fixable = next(f for f in a.findings if f.fix and f.fix.safety)
    a = dataclasses.replace(a, findings=[fixable] + [dataclasses.replace(f, message=f"{HOSTILE[i % 3]} " + "M" * 100_000)
                                                     for i in range(400) for f in a.findings[:1]])
    page = html.render(prepare(a))
    _page_ok(page)
    assert len(page.encode()) < MAX_PAGE, len(page)
    assert page.count('<section class="finding"') == MAX_FINDINGS
    assert f"{len(a.findings) - MAX_FINDINGS} more findings, each costing less, not shown here" in page
    assert 'class="diff"' in page and "C" * 2000 not in page  # the fix's diff is there, its lines clipped
    assert "M" * 3000 not in page and "more characters]" in page


def test_a_lane_of_many_short_parts_is_drawn_coarser():
    """A lane's rectangles stay under MAX_LANE_SEGMENTS however many spans it has (gaps merge)."""
    import numpy as np

    from trainprof.report import step_view as V

    s = np.arange(1000, dtype=float) * 1000.0  # in a 1 s step, 1000 kernels and 1000 copies, 1 ms apart:
    parts = [("kernel", s, s + 2.0), ("copy", s + 500.0, s + 502.0)]  # each gap wider than a pixel (1/1500)
    assert len(V._segments(s, s + 2.0, 0.0, 1e6)) == 1000
    segs, res = V._lane(parts, 0.0, 1e6)
    assert len(segs) <= V.MAX_LANE_SEGMENTS and res < V.RESOLUTION
    for kind in ("kernel", "copy"):
        xs = [(x, w) for x, w, k in segs if k == kind]
        assert xs == sorted(xs) and 0.0 <= xs[0][0] and xs[-1][0] + xs[-1][1] <= 1.0 + 1e-9

"""The report's tables and commands: the costliest lines (unprofiled, as the step time), the
costliest ops (self time), each fix's `trainprof apply` command; the page's one script."""
import html
import json
import os
import re
import shlex
import shutil

import numpy as np
import pytest

from conftest import ROOT, SAMPLES, run_cli
from test_report_html import JS, without_our_script


def _trace(events):
    """A Trace of complete events (name, cat, ts, dur, tid)."""
    from trainprof.trace.model import Trace

    names = sorted({e[0] for e in events})
    cats = sorted({e[1] for e in events})
    n = len(events)
    col = lambda k, dt=np.float64: np.array([e[k] for e in events], dtype=dt)  # noqa: E731
    minus = np.full(n, -1, dtype=np.int64)
    return Trace("t.json", names, cats, np.array([names.index(e[0]) for e in events], np.int32),
                 np.array([cats.index(e[1]) for e in events], np.int32), col(2), col(3), np.ones(n, np.int64),
                 col(4, np.int64), minus, minus, minus, minus, minus, minus)


def test_self_time_is_less_the_events_directly_inside():
    from trainprof.report.tables import self_times

    tr = _trace([("P", "cpu_op", 0, 100, 1), ("C", "cpu_op", 10, 20, 1), ("G", "cuda_runtime", 12, 8, 1),
                 ("C", "cpu_op", 40, 20, 1), ("Q", "cpu_op", 5, 45, 2),  # another thread: not inside P
                 ("R", "cpu_op", 95, 10, 1),  # overruns P's end: only its part inside counts
                 ("I", "cpu_op", 40, 0, 1), ("J", "cpu_op", 100, 0, 1)])  # instants: inside C, after P
    own = self_times(tr, np.arange(len(tr)))
    assert own.tolist() == [100 - 20 - 20 - 5, 20 - 8, 8, 20, 45, 10, 0, 0]


def _stack_self_times(tr, idx):
    """The same by the plain stack walk, one event at a time (what self_times vectorizes)."""
    perm = np.lexsort((-tr.dur[idx], tr.ts[idx], tr.tid[idx], tr.pid[idx]))
    order = idx[perm]
    ts, end, thread = tr.ts[order].tolist(), tr.end[order].tolist(), list(zip(tr.pid[order], tr.tid[order]))
    inner, stack = [0.0] * len(order), []
    for k in range(len(order)):
        if k and thread[k] != thread[k - 1]:
            stack.clear()
        while stack and end[stack[-1]] <= ts[k]:
            stack.pop()
        if stack:
            inner[stack[-1]] += min(end[k], end[stack[-1]]) - ts[k]
        stack.append(k)
    out = np.empty(len(order))
    out[perm] = np.maximum(tr.dur[order] - np.array(inner), 0.0)
    return out


@pytest.mark.parametrize("run", ["per_sample_loss", "ddp_accum", "dataloader_stall"])
def test_self_times_agree_with_a_stack_walk_on_real_traces(run):
    from trainprof.report.tables import self_times
    from trainprof.trace import load_trace
    from trainprof.trace.model import CPU_OP, CUDA_DRIVER, CUDA_RUNTIME

    d = os.path.join(SAMPLES, run)
    tr = load_trace(os.path.join(d, next(f for f in sorted(os.listdir(d)) if ".pt.trace.json" in f)))
    idx = np.flatnonzero(tr.cat_mask(CPU_OP, CUDA_RUNTIME, CUDA_DRIVER))
    assert len(idx) > 5000
    np.testing.assert_allclose(self_times(tr, idx), _stack_self_times(tr, idx), atol=1e-6)


@pytest.fixture(scope="module")
def host_alloc():
    from trainprof.engine import analyze

    return analyze(os.path.join(SAMPLES, "host_alloc"))


def test_lines_are_the_costliest_in_unprofiled_ms(host_alloc):
    from trainprof.report.tables import line_rows

    run = host_alloc.run
    rows = line_rows(run)
    assert len(rows) == len([k for k in run.lines.by_line if k is not None]) == 10  # every line, under MAX_ROWS
    assert [r["ms"] for r in rows] == sorted((r["ms"] for r in rows), reverse=True)
    for r in rows:  # in unprofiled terms, as the step time: less than the profiler's time of the line
        assert r["ms"] == run.cpu_ms(run.lines.by_line[(r["path"], r["line"])]) and r["ms"] < r["profiled_ms"]
        assert r["share"] == pytest.approx(r["ms"] / (run.unprofiled_us / 1000))
    assert (os.path.basename(rows[0]["path"]), rows[0]["line"]) == ("host_alloc.py", 19)  # the pageable copy
    assert sum(r["share"] for r in rows) < 1
    assert [(r["path"], r["line"]) for r in line_rows(run, 3)] == [(r["path"], r["line"]) for r in rows[:3]]


def test_ops_by_device_time_and_self_time(host_alloc):
    from trainprof.report.tables import op_rows
    from trainprof.trace import measures as M
    from trainprof.trace.model import CPU_OP, CUDA_DRIVER, CUDA_RUNTIME

    run = host_alloc.run
    tr, (lo, hi) = run.trace, run.steps.window
    every = op_rows(run, 10_000)
    inwin = (tr.ts >= lo) & (tr.ts < hi)
    g = M.gpu_mask(tr) & inwin
    assert sum(r["ms"] for r in every["gpu"]) == pytest.approx(tr.dur[g].sum() / run.n_steps / 1000)
    assert sum(r["count"] for r in every["gpu"]) == pytest.approx(g.sum() / run.n_steps)
    c = tr.cat_mask(CPU_OP, CUDA_RUNTIME, CUDA_DRIVER) & inwin  # self times add up to the outermost events' time
    assert sum(r["ms"] for r in every["cpu"]) == pytest.approx(tr.dur[M.top_level(tr, c)].sum() / run.n_steps / 1000, rel=1e-3)
    top = op_rows(run)
    assert len(top["gpu"]) == len(top["cpu"]) == 15 and top["gpu"] == every["gpu"][:15]
    first = top["gpu"][0]  # the batch and three small tensors copied from pageable memory every step
    assert (first["name"], first["kind"], first["count"]) == ("Memcpy HtoD (Pageable -> Device)", "copy", 4.0)
    assert first["avg_us"] == pytest.approx(first["ms"] * 1000 / first["count"])
    assert {r["kind"] for r in top["gpu"]} <= {"kernel", "copy", "memset"} and top["cpu"][0]["name"] == "cudaMemcpyAsync"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """host_alloc's report, in a run directory whose name needs quoting in a shell."""
    tmp = tmp_path_factory.mktemp("tables")
    run = tmp / "it's a <run>"
    shutil.copytree(os.path.join(SAMPLES, "host_alloc"), run)
    r = run_cli("report", str(run), "-q")
    assert r.returncode == 0, r.stderr
    return run, (run / "report.html").read_text(encoding="utf-8")


def _table(page: str, id_: str) -> list[list[str]]:
    """The cells' text of a table's rows, without its heading."""
    body = page[page.index(f'id="{id_}"'):]
    body = body[:body.index("</table>")]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]]


def test_the_page_shows_lines_with_their_code_and_the_top_ops(page):
    run, text = page
    lines = _table(text, "line-table")
    assert len(lines) == 10
    assert lines[0][0] == "host_alloc.py:19" and lines[0][4] == "x = data[step % len(data)].to(device)"
    assert lines[0][5] == "#1" and lines[0][2].endswith("%")  # the finding at that line, linked
    assert float(lines[0][1]) < float(lines[0][3])  # unprofiled, then as the profiler recorded it
    gpu, cpu = _table(text, "ops-gpu"), _table(text, "ops-cpu")
    assert len(gpu) == len(cpu) == 15 and gpu[0][:2] == ["copy", "Memcpy HtoD (Pageable -> Device)"]
    doc = json.loads((run / "analysis.json").read_text())
    assert [(r["path"], r["line"]) for r in doc["lines"]][:2] == [("host_alloc.py", 19), ("host_alloc.py", 26)]
    assert len(doc["ops"]["gpu"]) == len(doc["ops"]["cpu"]) == 15


def test_each_fix_has_a_command_that_works(page, tmp_path):
    run, text = page
    cmds = {int(n): html.unescape(c) for n, c in re.findall(r'<pre class="cmd" id="apply-(\d+)">([^<]*)</pre>', text)}
    doc = json.loads((run / "analysis.json").read_text())
    fixable = [n for n, f in enumerate(doc["findings"], 1) if f["fix"] and f["fix"]["safety"]]
    assert sorted(cmds) == [2, 3, 4, 5] and set(fixable) == {1, 2, 3, 4, 5}  # 1: nothing apply can rewrite there
    assert 'data-copy="apply-2"' in text
    for n, cmd in cmds.items():
        argv = shlex.split(cmd)
        assert argv[:3] == ["trainprof", "apply", str(run)] and argv[3:] == ["--fix", str(n)]  # this finding alone
        before = (run / "host_alloc.py").read_bytes()
        r = run_cli(*argv[1:], "--dry-run", cwd=str(tmp_path))
        assert r.returncode == 0 and "+++ " in r.stdout, r.stderr
        assert (run / "host_alloc.py").read_bytes() == before
    # the three host-alloc findings: a command each, the number picking one
    assert len({cmds[3], cmds[4], cmds[5]}) == 3 and "The same command makes this fix at" not in text


def test_the_apply_command_is_made_in_one_place():
    from trainprof.report.html import apply_command

    f = {"rule": "host-alloc", "line": 21, "fix": {"id": "hoist-tensor"}}
    assert apply_command("/runs/a b", f, 3) == "trainprof apply '/runs/a b' --fix 3"


def test_the_one_script_runs_by_its_hash_and_reaches_nothing(page):
    _run, text = page
    rest = without_our_script(text)  # report.js, byte for byte, and the policy's hash of it
    assert "'unsafe-inline'" not in text.split("script-src")[1].split('"')[0]
    assert JS.isascii() and "</script" not in JS.lower()
    for word in ("http", "//", "fetch", "XMLHttpRequest", "import(", "eval", "Function(", "innerHTML",
                 "outerHTML", "insertAdjacentHTML", "document.write", "location", "src", "href", "open("):
        code = re.sub(r"/\*.*?\*/", "", JS, flags=re.S)  # its comments aside
        assert word not in code, word
    assert '<div class="zoom" id="timeline-zoom" hidden>' in rest  # the controls show only where it runs
    with open(os.path.join(ROOT, "templates", "report.js"), "rb") as f:
        assert b"\r" not in f.read()  # the browser hashes the text as parsed: CRs would be dropped first

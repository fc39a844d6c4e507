"""The CPU a run really has (capture/cores.py): the cores within a container's quota, and what
that many processes get done side by side, which loader estimates spread batches over."""
import math

from trainprof.capture import cores


def _tree(tmp_path, proc_line: str, files: dict) -> tuple[str, str]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(proc_line)
    return str(root), str(proc)


def test_cgroup_v2_quota_the_tightest_of_the_group_and_its_parents(tmp_path):
    root, proc = _tree(tmp_path, "0::/kubepods/pod1/ctr\n",
                       {"kubepods/pod1/ctr/cpu.max": "max 100000\n", "kubepods/pod1/cpu.max": "250000 100000\n",
                        "kubepods/cpu.max": "800000 100000\n"})
    assert cores._cgroup_quota(root, proc) == 2.5
    root, proc = _tree(tmp_path / "u", "0::/\n", {"cpu.max": "max 100000\n"})
    assert cores._cgroup_quota(root, proc) is None  # no limit


def test_cgroup_v1_quota(tmp_path):
    root, proc = _tree(tmp_path, "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n",
                       {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000\n",
                        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert cores._cgroup_quota(root, proc) == 3.0
    root, proc = _tree(tmp_path / "u", "4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                                                              "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cores._cgroup_quota(root, proc) is None
    assert cores._cgroup_quota(root, str(tmp_path / "missing")) is None


def test_available_is_the_affinity_within_the_quota(monkeypatch):
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(cores, "_cgroup_quota", lambda: 3.5)
    assert cores.available() == 4  # rounded up, as the JVM and Go runtimes count a quota
    monkeypatch.setattr(cores, "_cgroup_quota", lambda: None)
    assert cores.available() == 64


def test_side_by_side_throughput_is_measured_in_processes():
    got = cores.parallel(2, work=100_000)
    assert got is not None and got["procs"] == 2
    # two processes finish at most twice one's work in one's time, and more than nothing
    assert 0 < got["speedup"] <= 2 * 1.5 and math.isfinite(got["speedup"])
    assert got["one_ms"] > 0 and got["mean_ms"] > 0
    assert cores.parallel(1) is None  # one process: nothing side by side to measure


def test_damaged_cgroup_files_read_as_no_quota(tmp_path):
    root, proc = _tree(tmp_path, "0::/a\n", {"a/cpu.max": "100000 0\n", "cpu.max": "abc 100000\n"})
    assert cores._cgroup_quota(root, proc) is None
    root, proc = _tree(tmp_path / "v1", "4:cpu:/\n", {"cpu/cpu.cfs_quota_us": "x\n", "cpu/cpu.cfs_period_us": "0\n"})
    assert cores._cgroup_quota(root, proc) is None


def test_the_side_by_side_probe_runs_only_where_an_estimate_reads_it():
    from trainprof.capture.cores import worth_probing

    single = {"num_workers": 0}
    assert not worth_probing({"loaders": [], "cores": 16})  # no loader
    assert not worth_probing({"loaders": [{"num_workers": 4}], "cores": 2})  # one spare core: nothing to measure
    assert worth_probing({"loaders": [{"num_workers": 4}], "cores": 16,  # workers: their pace bounds every fix
                          "steady": {"loader_wait_ms": 0.0, "step_ms": 10.0}})
    # loading on the training thread: only where its wait could make a loader finding
    assert not worth_probing({"loaders": [single], "cores": 16, "steady": {"loader_wait_ms": 0.1, "step_ms": 10.0}})
    assert worth_probing({"loaders": [single], "cores": 16, "steady": {"loader_wait_ms": 4.0, "step_ms": 10.0}})
    assert worth_probing({"loaders": [single], "cores": 16})  # not timed in steady windows: cannot tell

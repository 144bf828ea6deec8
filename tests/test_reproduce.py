"""The one command: a real quick run killed mid-way resumes to the numbers and tables of an uninterrupted one."""

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import reproduce
from mnist_linear import phases, results

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "experiments.reproduce", "--preset", "quick", "--experiments", "baseline",
           "templates"]
# Wall-clock cells ("0.1 s for all seeds (+0.2 s compile)") differ between any two runs; nothing else may.
SECONDS = re.compile(r"\d+(?:\.\d+)? (?:s|min)\b")


def _run(out: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, **kwargs)


def _kill_during_templates(out: Path) -> subprocess.CompletedProcess:
    """Starts the run and sends SIGTERM once templates has recorded two phases."""
    phases = out / ".phases" / "templates"
    process = subprocess.Popen([*COMMAND, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list(phases.glob("*.pkl"))) < 2:
        assert process.poll() is None, f"the run ended before it could be killed: {process.communicate()}"
        assert time.monotonic() < deadline, "templates never recorded two phases"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _science(path: Path) -> str:
    return SECONDS.sub("<seconds>", path.read_text())


@pytest.mark.xdist_group("reproduce")
def test_a_killed_quick_run_resumes_to_the_same_tables(tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    done = _run(whole)
    assert done.returncode == 0, done.stderr

    killed = _kill_during_templates(resumed)
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr
    assert "Run the same command again to resume" in killed.stderr
    # What is on disk after the kill: the finished experiments whole, the recorded phases whole, nothing else.
    assert sorted(p.name for p in resumed.iterdir()) == [".phases", "baseline", "baseline-bf16", "reproduce.json"]
    log = results.read_json(resumed / "reproduce.json")
    assert [r["folder"] for r in log[0]["ran"]] == ["baseline", "baseline-bf16", "templates"]
    assert log[0]["ran"][-1]["interrupted"] == "SIGTERM"
    assert sorted(p.name for p in (resumed / "baseline").iterdir()) == sorted(p.name for p in (whole / "baseline").iterdir())
    recorded = sorted((resumed / ".phases" / "templates").glob("*.pkl"))
    assert len(recorded) >= 2  # and nothing else but what they were recorded under: no temporary file left
    assert sorted(p.name for p in (resumed / ".phases" / "templates").iterdir()) == sorted(
        [p.name for p in recorded] + ["identity.json"])
    for path in recorded:
        assert set(pickle.loads(path.read_bytes())) == {"fingerprint", "outputs", "timing"}

    again = _run(resumed)
    assert again.returncode == 0, again.stderr
    assert "recorded by the interrupted run, not rerun" in again.stderr
    assert "baseline · phase" not in again.stderr and "templates · phase" in again.stderr  # done is skipped
    assert sorted(p.name for p in resumed.iterdir()) == sorted(p.name for p in whole.iterdir())

    for job in reproduce.jobs("quick", ("mnist",), ("baseline", "templates")):
        a, b = (results.read_json(next((root / job.folder).glob("results.json*"))) for root in (whole, resumed))
        assert a["records"] == b["records"], job.folder  # every number, exactly
        for name in ("table.md", "table.tex"):
            assert _science(whole / job.folder / name) == _science(resumed / job.folder / name), (job.folder, name)
        pictures = sorted(p.name for p in (whole / job.folder).glob("*.png"))
        assert pictures and pictures == sorted(p.name for p in (resumed / job.folder).glob("*.png"))
    # The report: every table and figure of each run, and the same text but for times and provenance.
    report = (resumed / "REPORT.md").read_text()
    for job in reproduce.jobs("quick", ("mnist",), ("baseline", "templates")):
        assert (resumed / job.folder / "table.md").read_text().rstrip("\n") in report
        for png in (resumed / job.folder).glob("*.png"):
            assert f"]({job.folder}/{png.name})" in report
    assert report.count("resumed after an interruption: ") == 1  # templates' provenance says so
    summary = (resumed / "summary.md").read_text()
    assert "reproduce`: 1 (0 interrupted)" in (whole / "summary.md").read_text()
    assert "reproduce`: 2 (1 interrupted)" in summary and "| MNIST | 3 | " in summary  # baseline, bf16, templates

    def text(root):  # all but how long it took, and when
        lines = (root / "REPORT.md").read_text().replace((root / "summary.md").read_text(), "").splitlines()
        return SECONDS.sub("", "\n".join(line for line in lines if not line.startswith("*Provenance")))
    assert text(whole) == text(resumed)


def test_a_folder_holding_another_config_is_never_overwritten(tmp_path, capsys):
    committed = ROOT / "results" / "baseline"
    shutil.copytree(committed, tmp_path / "baseline")  # the cpu preset's run, where a quick one is asked for
    before = {p.name: p.read_bytes() for p in (tmp_path / "baseline").iterdir()}
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["--preset", "quick", "--experiments", "baseline", "--out", str(tmp_path)])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert "holds 'baseline' with preset 'cpu'" in message and "Choose another --out" in message
    assert {p.name: p.read_bytes() for p in (tmp_path / "baseline").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline"]  # nothing else begun


@pytest.mark.parametrize("preset, folder, datasets", [("cpu", "results", ("mnist", "fashion_mnist")),
                                                      ("quick", "results/quick", ("mnist",))])
def test_the_committed_reports_are_what_their_results_make(preset, folder, datasets):
    """Every committed run of a preset, in the report's order, with its reading, tables, figures and provenance;
    the committed REPORT.md and summary.md are what the results files make today (no drift, as README's tables)."""
    root = ROOT / folder
    planned = reproduce.jobs(preset, datasets, reproduce.EXPERIMENTS)
    assert all(reproduce.state(job, preset, root, reproduce.expected_config(job, preset, root / job.folder)) == "done"
               for job in planned)
    summary = reproduce.render_summary(root, planned, preset)
    report = reproduce.render_report(root, planned, preset, summary)
    assert (root / "summary.md").read_text() == summary and (root / "REPORT.md").read_text() == report
    for job in planned:
        assert f"## {reproduce._title(job)}" in report
        assert (root / job.folder / "table.md").read_text().rstrip("\n") in report
        assert all(f"]({job.folder}/{png.name})" in report for png in (root / job.folder).glob("*.png"))
    assert report.count("*Provenance: commit ") == len(planned)
    assert report.count("\n- [") == len(planned)  # the contents


def test_flags_are_checked_before_anything_runs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["--preset", "fast", "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit):
        reproduce.main(["--experiments", "baseline", "mnist_c", "--out", str(tmp_path / "r")])
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        reproduce.main(["--out", str(tmp_path / "file")])
    assert "is a file" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["file"]


calls = []


def _compute(value):
    calls.append(value)
    return {"x": value}, {"run_s": 0.0}


def test_phases_are_read_back_only_for_the_same_identity_and_in_order(tmp_path):
    """The recorder itself: same identity, same fingerprints: read back; another identity: nothing read back;
    after the first fingerprint that differs, nothing later is read back either."""
    heard = []

    def run(identity, fingerprints):
        calls.clear()
        with phases.recording(tmp_path, identity, heard.append):
            return [phases.run("step", f, lambda f=f: _compute(f))[0]["x"] for f in fingerprints], list(calls)

    assert run({"config": 1}, ["a", "b", "c"]) == (["a", "b", "c"], ["a", "b", "c"])
    assert run({"config": 1}, ["a", "b", "c"]) == (["a", "b", "c"], [])  # all read back
    assert [p.recorded for p in heard[-3:]] == [True, True, True]
    assert run({"config": 1}, ["a", "B", "c"]) == (["a", "B", "c"], ["B", "c"])  # c comes after a mismatch
    assert run({"config": 2}, ["a", "B", "c"]) == (["a", "B", "c"], ["a", "B", "c"])  # another config: rerun all
    with phases.recording(tmp_path, {"config": 2}):
        with pytest.raises(RuntimeError, match="do not nest"):
            phases.run("outer", "o", lambda: phases.run("inner", "i", lambda: _compute("i")))
        with pytest.raises(RuntimeError, match="already active"):
            with phases.recording(tmp_path / "other", {}):
                pass


READ_BACK_ON_TWO_DEVICES = """
import jax, numpy as np
from mnist_linear import experiment, models, phases, sharding, tasks, train
from realdata import mnist
split = mnist().train
x, y = sharding.replicated((split.images[:500], split.labels[:500]))
keys = sharding.replicated(jax.random.split(jax.random.key(0), 4))
hparams = sharding.replicated(train.Hyperparams(np.float32(0.1), np.float32(0.0)))
outputs = []
for _ in range(2):
    with phases.recording({folder!r}, {{"devices": 2}}):
        (params, log), _ = experiment.compile_and_run(train.train_seeds, keys, x, y, hparams, model=models.LINEAR,
                                                      task=tasks.CLASSIFICATION, config=train.TrainConfig(1, 50))
    outputs.append((params, log))
(a, b) = outputs
assert jax.device_count() == 2
for left, right in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert left.sharding.is_equivalent_to(right.sharding, left.ndim), (left.sharding, right.sharding)
    np.testing.assert_array_equal(np.asarray(left), np.asarray(right))
print(all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(b)))
"""


@pytest.mark.xdist_group("reproduce")
def test_outputs_read_back_lie_on_the_devices_as_they_did(tmp_path):
    """Four models split over two devices: the outputs read back are the same bits, placed the same way."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": str(ROOT / "tests")}
    done = subprocess.run([sys.executable, "-c", READ_BACK_ON_TWO_DEVICES.format(folder=str(tmp_path))], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True", done.stdout  # every program leaves its results whole on every device

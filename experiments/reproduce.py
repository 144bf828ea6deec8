"""Every table and figure, one command: each experiment's preset into DIR/<folder>/, then DIR/REPORT.md.

Run:
    python -m experiments.reproduce --preset quick --out report                       # README's main command
    python -m experiments.reproduce --preset cpu --dataset both --out results          # the README's tables
    python -m experiments.reproduce --preset gpu --out results                         # results/*-gpu (a GPU)

Runtime (2 CPU cores, AMD EPYC, measured; each report's summary.md, included in README): quick 2.7 to 3.1 min
from an empty compilation cache (7.0 min on 2 cores of an Intel Xeon); cpu 27.2 min of wall clock on MNIST
(its programs 25.9 min), and on Fashion-MNIST the runs' programs 30.9 min. Expected: the numbers of each
experiment's docstring.

The folders are `<experiment>` on MNIST, `<experiment>-fashion` on Fashion-MNIST, with `-gpu`
appended for the gpu preset, plus `baseline-bf16` (the baseline with bfloat16 products). REPORT.md
(REPORT-gpu.md for the gpu preset) holds, per experiment, a reading of what its tables show
(each script's `reading`, made from its results file), the tables, the figures and the provenance
(commit, machine, when, how long).

Resumable: a folder whose results file holds the same experiment, preset and config is done and
skipped (whatever code made it: delete a folder to run it again); within an experiment, every
finished phase (`mnist_linear.phases`) is recorded in DIR/.phases/ and read back instead of rerun
when the code, config, jax and devices are the same. SIGINT or SIGTERM stops a run cleanly: the
experiment under way is written into DIR/.partial/ and only moved into place whole, so no
half-written folder is left; rerunning the same command finishes the same numbers. A folder holding
another config (an older preset, other flags) is never overwritten: the run refuses before training
anything, as it does for a bad flag of any run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
from tqdm import tqdm

from mnist_linear import config as configs
from mnist_linear import compiling, experiment, phases, results, sharding, tables

EXPERIMENTS = ("baseline", "templates", "translation", "spatial", "locality", "resolution", "ladder", "regression")
DATASETS = {"mnist": ("mnist",), "fashion_mnist": ("fashion_mnist",), "both": ("mnist", "fashion_mnist")}
DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


class Job(NamedTuple):
    """One experiment run: its folder under --out, the script and the flags it is given."""

    folder: str
    experiment: str
    dataset: str
    flags: tuple[str, ...]

    @property
    def module(self):
        return importlib.import_module(f"experiments.{self.experiment}")  # by name: scripts never import scripts

    def argv(self, preset: str, out: Path) -> list[str]:
        return ["--out", str(out), "--preset", preset, "--dataset", self.dataset, *self.flags]


def jobs(preset: str, datasets: tuple[str, ...], experiments: tuple[str, ...]) -> list[Job]:
    """The runs of a report, in its order: each experiment on each dataset, the bfloat16 baseline after the baseline."""
    suffix = "-gpu" if preset == "gpu" else ""
    found = []
    for name in experiments:
        for dataset in datasets:
            stem = name + ("-fashion" if dataset == "fashion_mnist" else "")
            # Morphometry needs the strokes of handwriting: Fashion-MNIST has the other two problems.
            flags = ("--problems", "keypoint", "quality") if (name, dataset) == ("regression", "fashion_mnist") else ()
            found.append(Job(stem + suffix, name, dataset, flags))
        if name == "baseline" and "mnist" in datasets:
            found.append(Job("baseline-bf16" + suffix, "baseline", "mnist", ("--compute-dtype", "bfloat16")))
    return found


def expected_config(job: Job, preset: str, out: Path) -> dict:
    """The config `job` runs with, as its results file records it (checked: a bad flag fails here, before training)."""
    module = job.module
    config, _, _ = configs.parse(module.Config, module.__doc__, job.argv(preset, out))
    return json.loads(json.dumps(dataclasses.asdict(config)))


def state(job: Job, preset: str, out: Path, expected: dict) -> str:
    """'done' (the folder holds this job's results, run with the `expected` config), 'absent', or what else the
    folder holds."""
    folder = out / job.folder
    files = sorted(folder.glob("results.json*"))
    if not files:
        return "absent" if not folder.exists() or not any(folder.iterdir()) else "holds files but no results file"
    written = results.read_json(files[0])
    if written.get("experiment") != job.experiment or written.get("preset") != preset:
        return f"holds {written.get('experiment')!r} with preset {written.get('preset')!r}"
    defaults = dataclasses.asdict(job.module.Config())
    # A field the file lacks was added after it was written: the run had its default.
    differ = [k for k, v in expected.items() if written["config"].get(k, json.loads(json.dumps(defaults[k]))) != v]
    return "done" if not differ else f"was run with other {', '.join(differ)}"


def identity(config: dict) -> dict:
    """What must not change between a run (its `config`) and its resumption for a recorded phase to be read back."""
    env = experiment.environment()
    return {"config": config, "code": experiment.code_version(),
            **{k: env[k] for k in ("jax", "jaxlib", "platform", "device_kind", "device_count", "compiler_options")}}


def run_job(job: Job, preset: str, out: Path, config: dict, bar: tqdm) -> dict:
    """Runs `job` into out/.partial/, recording its phases, then moves the folder into place whole.
    Returns what reproduce.json keeps of it: the folder, its phases and how many were read back."""
    module, partial = job.module, out / ".partial" / job.folder
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    seen = tqdm(desc=f"{job.folder}: phases", unit="phase", position=1, leave=False, file=bar.fp, dynamic_ncols=True)
    read_back = []

    def on_phase(phase: phases.Phase) -> None:
        took = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in phase.timing.items())
        seen.update()
        read_back.append(phase.recorded)
        bar.write(f"  {job.folder} · phase {phase.index} {phase.name}: {took}"
                  + (" (recorded by the interrupted run, not rerun)" if phase.recorded else ""), file=bar.fp)

    try:
        with open(partial / "log.txt", "w") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log), \
                phases.recording(out / ".phases" / job.folder, identity(config), on_phase):
            try:
                module.main(job.argv(preset, partial))
            except experiment.EveryRunFailed as failed:  # written all the same: the report says so per model
                print(f"FAILED: {failed}")
    finally:
        seen.close()
    os.replace(partial, out / job.folder)
    shutil.rmtree(out / ".phases" / job.folder)
    return {"folder": job.folder, "phases": len(read_back), "read_back": sum(read_back)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=configs.PRESET_NAMES, default="quick",
                        help="every experiment's named preset (default: quick, minutes on 2 CPU cores)")
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="mnist", help="default: mnist")
    parser.add_argument("--out", type=Path, required=True, help="folder of the report and one folder per run")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=EXPERIMENTS,
                        help="a subset, in the report's order (default: all)")
    args = parser.parse_args(argv)
    out = args.out
    try:
        configs.check_writable(out)
    except ValueError as e:
        parser.error(str(e))
    if os.environ.get(sharding.COORDINATOR_ENV):
        parser.error(f"the report runs in one process; unset {sharding.COORDINATOR_ENV}, or run each experiment's "
                     "own command on every process.")
    if args.preset == "gpu" and jax.default_backend() == "cpu":
        parser.error("the gpu preset's settings take hours on a CPU and JAX sees no accelerator here: run it where "
                     "one is, or choose --preset cpu.")
    planned = jobs(args.preset, DATASETS[args.dataset], tuple(e for e in EXPERIMENTS if e in args.experiments))
    expected = {job: expected_config(job, args.preset, out / job.folder) for job in planned}  # every run's flags
    states = {job: state(job, args.preset, out, expected[job]) for job in planned}
    clashes = [f"{out / job.folder} {s}" for job, s in states.items() if s not in ("done", "absent")]
    if clashes:
        parser.error("these folders hold other runs and are never overwritten: " + "; ".join(clashes)
                     + ". Choose another --out, or delete them to run them again.")

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    todo = [job for job in planned if states[job] == "absent"]
    cache = compiling.enable_cache()
    invocation = {"argv": list(sys.argv[1:] if argv is None else argv), "preset": args.preset,
                  "started": experiment.now(), "machine": tables.machine(experiment.environment()),
                  "compilation_cache_entries": len(list(cache.glob("*"))) if cache and cache.is_dir() else 0, "ran": []}
    start = time.perf_counter()
    try:
        interrupted = _run_all(todo, planned, args.preset, out, expected, invocation["ran"])
    finally:  # interrupted too: the log says how far each invocation that ran something got
        invocation.update(finished=experiment.now(), wall_s=time.perf_counter() - start)
        if invocation["ran"]:
            results.write_json(out / "reproduce.json", _log(out) + [invocation])
    if interrupted:
        return 128 + (signal.SIGTERM if interrupted == "SIGTERM" else signal.SIGINT)
    for scratch in (".partial", ".phases"):  # empty once every run is done
        shutil.rmtree(out / scratch, ignore_errors=True)
    suffix = "-gpu" if args.preset == "gpu" else ""
    summary = render_summary(out, planned, args.preset)
    results.write_text(out / f"summary{suffix}.md", summary)
    results.write_text(out / f"REPORT{suffix}.md", render_report(out, planned, args.preset, summary))
    failed = [job.folder for job in planned if _written(out, job).get("every_run_failed")]
    print(f"Wrote {out / f'REPORT{suffix}.md'}" + (f"; every run of some model failed in {', '.join(failed)}, "
                                                  "as its tables say" if failed else ""))
    return 1 if failed else 0


def _run_all(todo: list[Job], planned: list[Job], preset: str, out: Path, expected: dict, ran: list) -> str | None:
    """Runs `todo` under one progress bar over the report's runs, each weighted by how long it took when the
    committed report of its preset was made (`expected_seconds`), so that the estimate of what is left knows a
    long run from a short one; the signal's name if one stopped it."""
    weight = expected_seconds(planned, preset)
    left = len(todo)
    with tqdm(total=sum(weight.values()), initial=sum(weight[job] for job in planned if job not in todo),
              file=sys.stderr, dynamic_ncols=True,
              bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} so far, about {remaining} left{postfix}") as bar:
        for job in todo:
            bar.set_description(f"{len(planned) - left}/{len(planned)} runs done; {job.folder}")
            start = time.perf_counter()
            try:
                record = run_job(job, preset, out, expected[job], bar)
            except KeyboardInterrupt as e:
                shutil.rmtree(out / ".partial", ignore_errors=True)
                bar.write(f"Interrupted ({e or 'SIGINT'}) during {job.folder}; its finished phases are recorded in "
                          f"{out / '.phases'}. Run the same command again to resume.", file=bar.fp)
                ran.append({"folder": job.folder, "interrupted": str(e) or "SIGINT"})
                return str(e) or "SIGINT"
            record["wall_s"] = time.perf_counter() - start
            ran.append(record)
            bar.write(f"{job.folder}: done in {record['wall_s']:.0f} s", file=bar.fp)
            left -= 1
            bar.set_description(f"{len(planned) - left}/{len(planned)} runs done")
            bar.update(weight[job])
    return None


RESULTS = Path(__file__).resolve().parents[1] / "results"
COMMITTED = {"quick": RESULTS / "quick", "cpu": RESULTS, "gpu": RESULTS}  # the reports this repository holds


def expected_seconds(planned: list[Job], preset: str) -> dict[Job, float]:
    """Each run's compile and run time in the committed report of `preset` (results/quick/, results/); runs it
    lacks get the mean of those it has, and without any every run weighs 1."""
    found = {}
    for job in planned:
        files = sorted((COMMITTED[preset] / job.folder).glob("results.json*"))
        if files:
            found[job] = max(_seconds(results.read_json(files[0])), 1.0)
    default = sum(found.values()) / len(found) if found else 1.0
    return {job: found.get(job, default) for job in planned}


def _log(out: Path) -> list[dict]:
    """reproduce.json: every invocation that ran something; [] before the first."""
    return results.read_json(out / "reproduce.json") if (out / "reproduce.json").exists() else []


def _written(out: Path, job: Job) -> dict:
    return results.read_json(next((out / job.folder).glob("results.json*")))


def render_summary(out: Path, planned: list[Job], preset: str) -> str:
    """How long the preset took on each dataset, from the runs' results files and reproduce.json (each
    invocation's wall clock)."""
    invocations = [i for i in _log(out) if i.get("preset", preset) == preset]
    made = [i for i in invocations if i["ran"]]
    folders = {job.folder for job in planned}
    timed = [r for i in invocations for r in i["ran"] if r["folder"] in folders]
    wall = {r["folder"]: r["wall_s"] for r in timed if "wall_s" in r}  # the run that made each folder

    def row(title: str, runs: list[Job]) -> tuple[str, float]:
        compute = sum(_seconds(_written(out, job)) for job in runs)
        whole = [wall[job.folder] for job in runs if job.folder in wall]
        took = _duration(sum(whole)) if whole else "—"
        return f"| {title} | {len(runs)} | {_duration(compute)} | {len(whole)} | {took} |", compute

    datasets = list(dict.fromkeys(job.dataset for job in planned))
    rows = [row(DATASET_TITLES[d], [job for job in planned if job.dataset == d]) for d in datasets]
    if len(datasets) > 1:
        rows.append(row("both", planned))
    headline = "; ".join(f"{DATASET_TITLES[d]}, {_duration(compute)}" for d, (_, compute) in zip(datasets, rows))
    cold = sum(not i["compilation_cache_entries"] for i in made)
    machines = sorted({i["machine"] for i in made})
    return "\n".join([
        f"**How long the {preset} preset took, compiling and running: {headline}.**", "",
        "| dataset | runs | compiling and running | made by `experiments.reproduce` | their wall clock |",
        "| --- | --- | --- | --- | --- |", *(r for r, _ in rows), "",
        f"Invocations of `python -m experiments.reproduce`: {len(made)} ({sum('interrupted' in r for r in timed)} "
        f"interrupted), on {' and '.join(machines) or '—'}; {cold} of them began with an empty compilation cache. "
        "Wall clock: from the start to the end of each run (tuning, data, tables and figures included), as "
        "reproduce.json logs the invocation that made it. Compiling and running: the programs' measured compile and "
        "run times of every run, also those made by an experiment's own command (phases read back on a resume count "
        "as measured).", ""])


def render_report(out: Path, planned: list[Job], preset: str, summary: str = "") -> str:
    """REPORT.md from the results folders and reproduce.json alone (and `summary`, how long it took): per run a
    reading, the tables, the figures, the provenance."""
    written = {job: _written(out, job) for job in planned}
    last = {r["folder"]: r for i in _log(out) for r in i["ran"] if "wall_s" in r}  # the run that made each folder
    commits = sorted({str(w["environment"].get("git_commit"))[:10] for w in written.values()})
    datasets = sorted({DATASET_TITLES[job.dataset] for job in planned})
    lines = [f"# Every table and figure: the {preset} preset", "",
             f"Made by `python -m experiments.reproduce --preset {preset}` on {' and '.join(datasets)}: "
             f"{len(planned)} runs. Every number below comes from the results files beside this report; "
             "`python -m experiments.render <folder>` redraws a folder's tables, and the figures its experiment draws from "
             "results alone, from its file (figures of trained parameters need the run)."
             + (f" The runs come from {len(commits)} commits ({', '.join(commits)}): each part's provenance "
                "names its own." if len(commits) > 1 else ""), "", summary]
    lines += [f"- [{_title(job)}](#{_anchor(_title(job))})" for job in planned] + [""]
    for job in planned:
        w, folder, module = written[job], out / job.folder, job.module
        lines += [f"## {_title(job)}", "", f"*{_first_sentence(module.__doc__)}*", ""]
        lines += [f"- {sentence}" for sentence in module.reading(w)] + [""]
        lines += [(folder / "table.md").read_text().rstrip("\n"), ""]
        lines += [f"![{png.stem.replace('_', ' ')}]({job.folder}/{png.name})" for png in sorted(folder.glob("*.png"))]
        lines += ["", _provenance(w, last.get(job.folder)), ""]
    return "\n".join(lines)


def _first_sentence(doc: str) -> str:
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".") + "."


def _title(job: Job) -> str:
    extra = ", bfloat16 products" if "bfloat16" in job.flags else ""
    return f"{job.experiment.capitalize()} ({DATASET_TITLES[job.dataset]}{extra})"


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _provenance(written: dict, made: dict | None) -> str:
    env = written["environment"]
    commit = env.get("git_commit")
    code = "an unknown commit" if commit is None else f"commit {commit[:10]}"
    code += " (dirty)" if env.get("git_dirty") else ""
    when = f", {env['started']} to {env['finished']}" if "started" in env else ""
    again = ""
    if made and made.get("read_back"):
        again = (f"; resumed after an interruption: {made['read_back']} of its {made['phases']} phases read back "
                 "as an earlier process of the same code, config and devices recorded them")
    return (f"*Provenance: {code}, {tables.machine(env)}, jax {env['jax']}, preset {written['preset']}, "
            f"dataset {written['dataset']['name']} (MD5-verified){when}; {_duration(_seconds(written))} of "
            f"compiling and running{again}.*")


def _seconds(written: dict) -> float:
    """Seconds of every timed phase in a results file (its `timing`, however nested)."""
    def total(timing):
        if isinstance(timing, dict):
            return sum(total(v) for v in timing.values())
        return timing if isinstance(timing, (int, float)) else 0.0
    return total(written.get("timing", {}))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

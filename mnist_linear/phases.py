"""Phases of a run, recorded as they finish, so that a killed run resumes where it stopped.

A phase is one compiled program of an experiment (`experiment.compile_and_run`) or its tuning grid
(`experiment.tune_linear`). Inside `recording(folder, identity)`, the n-th phase of the run is looked
up as `folder/NNN-<name>.pkl`: found, with the same fingerprint (the phase's name and its arguments'
shapes and dtypes), its outputs and timing are read back instead of computed; otherwise it runs and
its outputs, pulled to the host, are written there atomically. An experiment is a straight line of
phases, so the same config, code and devices replay the same phases in the same order, and the
outputs read back are the very bits an uninterrupted run would have computed. `identity` says what
must be the same (the caller's config, the code's commit and uncommitted changes, jax and the
devices): a folder recorded under another identity is emptied first, and after the first phase
whose fingerprint differs nothing more is read back. Outside `recording` every phase simply runs.

Imports no jax: the callers pull outputs to the host and put them back on the devices.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from mnist_linear import results


class Phase(NamedTuple):
    """What `on_phase` hears after each phase: its index in the run, name, timing and whether it was read back."""

    index: int
    name: str
    timing: dict  # seconds as measured when it ran: {"compile_s", "run_s"}, or {"total_s"} for the tuning grid
    recorded: bool  # read back from an earlier, interrupted run rather than computed now


class _Recorder:
    def __init__(self, folder: Path, on_phase: Callable[[Phase], None] | None):
        self.folder, self.on_phase, self.count, self.replaying, self.busy = folder, on_phase, 0, True, False

    def run(self, name: str, fingerprint: str, compute: Callable[[], tuple[Any, dict]],
            to_host: Callable, to_device: Callable) -> tuple[Any, dict]:
        if self.busy:  # a phase inside a phase would number the phases differently on a resume
            raise RuntimeError(f"phase {name!r} started inside phase {self.count - 1}; phases do not nest.")
        index, self.count, self.busy = self.count, self.count + 1, True
        try:
            path = self.folder / f"{index:03d}-{name}.pkl"
            saved = _read(path) if self.replaying else None
            self.replaying = saved is not None and saved["fingerprint"] == fingerprint
            if self.replaying:
                outputs, timing = to_device(saved["outputs"]), saved["timing"]
            else:
                outputs, timing = compute()
                with results.atomic_path(path) as tmp:
                    tmp.write_bytes(pickle.dumps({"fingerprint": fingerprint, "outputs": to_host(outputs),
                                                  "timing": timing}, protocol=pickle.HIGHEST_PROTOCOL))
        finally:
            self.busy = False
        if self.on_phase is not None:
            self.on_phase(Phase(index, name, timing, self.replaying))
        return outputs, timing


_active: _Recorder | None = None
IDENTITY = "identity.json"


@contextlib.contextmanager
def recording(folder: str | Path, identity: dict, on_phase: Callable[[Phase], None] | None = None) -> Iterator[None]:
    """Within it, every phase is recorded in `folder` (created) and read back from there when an earlier
    run with the same `identity` (JSON: what must not change between a run and its resumption) finished
    the same phase; `on_phase` hears each one. Not reentrant: raises RuntimeError inside another."""
    global _active
    if _active is not None:
        raise RuntimeError("phases.recording is already active; one run records its phases at a time.")
    folder, identity = Path(folder), json.loads(json.dumps(identity))  # as it reads back
    if (folder / IDENTITY).exists() and results.read_json(folder / IDENTITY) != identity:
        shutil.rmtree(folder)  # recorded by another config, code or machine: nothing in it may be read back
    folder.mkdir(parents=True, exist_ok=True)
    results.write_json(folder / IDENTITY, identity)
    _active = _Recorder(folder, on_phase)
    try:
        yield
    finally:
        _active = None


def run(name: str, fingerprint: str, compute: Callable[[], tuple[Any, dict]], *,
        to_host: Callable = lambda x: x, to_device: Callable = lambda x: x) -> tuple[Any, dict]:
    """`compute()` -> (outputs, timing), or, inside `recording`, what the same phase recorded.

    `to_host` turns outputs into something picklable (numpy); `to_device` turns that back into what
    `compute` returns (device arrays). Outside `recording` this is `compute()`.
    """
    if _active is None:
        return compute()
    return _active.run(name, fingerprint, compute, to_host, to_device)


def _read(path: Path) -> dict | None:
    try:
        return pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None

"""Phases of a run, recorded as they finish, so that a killed run resumes where it stopped.

A phase is one compiled program of an experiment (`experiment.compile_and_run`) or its tuning grid
(`experiment.tune_linear`). Inside `recording(folder)`, the n-th phase of the run is looked up as
`folder/NNN-<name>.pkl`: found, with the same fingerprint (the phase's name and its arguments'
shapes and dtypes), its outputs and timing are read back instead of computed; otherwise it runs and
its outputs, pulled to the host, are written there atomically. An experiment is a straight line of
phases, so the same config and the same code replay the same phases in the same order and the
outputs read back are the very bits an uninterrupted run would have computed. Outside `recording`
every phase simply runs.

Imports no jax: the callers pull outputs to the host and put them back on the devices.
"""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from mnist_linear import results


class Phase(NamedTuple):
    """What `on_phase` hears after each phase: its index in the run, name, timing and whether it was read back."""

    index: int
    name: str
    timing: dict  # {"compile_s", "run_s"} as measured when it ran
    recorded: bool  # read back from an earlier, interrupted run rather than computed now


class _Recorder:
    def __init__(self, folder: Path, on_phase: Callable[[Phase], None] | None):
        self.folder, self.on_phase, self.count = folder, on_phase, 0

    def run(self, name: str, fingerprint: str, compute: Callable[[], tuple[Any, dict]],
            to_host: Callable, to_device: Callable) -> tuple[Any, dict]:
        index, self.count = self.count, self.count + 1
        path = self.folder / f"{index:03d}-{name}.pkl"
        saved = _read(path)
        if saved is not None and saved["fingerprint"] == fingerprint:
            outputs, timing, recorded = to_device(saved["outputs"]), saved["timing"], True
        else:
            outputs, timing = compute()
            with results.atomic_path(path) as tmp:
                tmp.write_bytes(pickle.dumps({"fingerprint": fingerprint, "outputs": to_host(outputs),
                                              "timing": timing}, protocol=pickle.HIGHEST_PROTOCOL))
            recorded = False
        if self.on_phase is not None:
            self.on_phase(Phase(index, name, timing, recorded))
        return outputs, timing


_active: _Recorder | None = None


@contextlib.contextmanager
def recording(folder: str | Path, on_phase: Callable[[Phase], None] | None = None) -> Iterator[None]:
    """Within it, every phase is recorded in `folder` (created) and read back from there when an earlier
    run of the same phase finished; `on_phase` hears each one. Not reentrant: raises RuntimeError inside another."""
    global _active
    if _active is not None:
        raise RuntimeError("phases.recording is already active; one run records its phases at a time.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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

"""States that go between the server and local worker processes through shared memory.

A state the round's clients start from (or one to score) is written once into a file in
/dev/shm and every worker process maps that file instead of receiving its own serialised copy:
its pages exist once on the machine, whatever the number of processes (before, the server held
a serialised blob and each worker unpacked a private copy of every state it used). The server
keeps the file mapped for as long as it exists, so its pages are always in some process's
proportional set size (a measurement of the process tree sees them); it unlinks the file once
every worker has answered. Workers map it read-only-in-effect (copy-on-write): a stray write
would stay private to that worker. A worker's update comes back the same way: the worker writes
it into a file and lets go of it, and the server maps it and removes the file at once, instead
of a serialised blob in the worker and an unpacked copy in the server.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch

SHM = Path("/dev/shm")
PREFIX = "bench-state-"  # then the server's pid: a file whose server is gone is swept
ALIGN = 64  # every tensor starts on a 64-byte boundary, so a view of the file has any dtype's alignment


@dataclasses.dataclass(frozen=True)
class SharedRef:
    """What travels instead of the tensors: the file and where each tensor lies in it."""

    path: str
    nbytes: int
    layout: tuple  # (name, dtype name, shape, offset) per tensor


def available() -> bool:
    return SHM.is_dir() and os.access(SHM, os.W_OK)


def sweep() -> None:
    """Remove the files of servers that are no longer running (killed before they could)."""
    if not available():
        return
    for path in SHM.glob(f"{PREFIX}*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)


def remove_files_of(pid: int) -> None:
    """Remove what process `pid` wrote and nobody took (a worker that died, or was stopped, with
    an update on its way)."""
    if available():
        for path in SHM.glob(f"{PREFIX}{pid}-*"):
            path.unlink(missing_ok=True)


def _tensors(buffer: torch.Tensor, layout: tuple) -> dict[str, torch.Tensor]:
    out = {}
    for name, dtype, shape, offset in layout:
        dt = getattr(torch, dtype)
        n = int(torch.Size(shape).numel()) * torch.empty((), dtype=dt).element_size()
        out[name] = buffer[offset : offset + n].view(dt).view(shape)
    return out


class SharedState:
    """One state written into a shared-memory file, mapped here until `close`."""

    def __init__(self, state: dict[str, torch.Tensor]):
        layout, offset = [], 0
        for name, t in state.items():
            layout.append((name, str(t.dtype).removeprefix("torch."), tuple(t.shape), offset))
            offset += -(-t.numel() * t.element_size() // ALIGN) * ALIGN
        fd, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", dir=SHM)
        try:  # claimed now: a full /dev/shm is an OSError here, not a bus error at the first write
            os.posix_fallocate(fd, 0, max(offset, ALIGN))
        except OSError:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        self.buffer = torch.from_file(path, shared=True, size=max(offset, ALIGN), dtype=torch.uint8)
        self.ref = SharedRef(path, max(offset, ALIGN), tuple(layout))
        with torch.no_grad():
            for t, view in zip(state.values(), _tensors(self.buffer, self.ref.layout).values()):
                view.copy_(t.detach().cpu())

    def close(self) -> None:
        """Remove the file; processes that still map it keep their pages until they let go."""
        Path(self.ref.path).unlink(missing_ok=True)
        self.buffer = None


def attach(obj):
    """The object a worker received, with every SharedRef in it (at any depth of dicts) mapped
    back into tensors."""
    if isinstance(obj, SharedRef):
        buffer = torch.from_file(obj.path, shared=False, size=obj.nbytes, dtype=torch.uint8)
        return _tensors(buffer, obj.layout)
    if isinstance(obj, dict):
        return {k: attach(v) for k, v in obj.items()}
    return obj


class SharedStates:
    """The states of one call, each written once into shared memory where the machine has it,
    else sent serialised; the files go when the call is over."""

    def __init__(self, states: dict):
        self.states, self.files = states, {}

    def __enter__(self):
        if available():
            for key, state in self.states.items():
                try:
                    self.files[key] = SharedState(state)
                except OSError:  # no room in /dev/shm: this state travels serialised
                    pass
        return self

    def __getitem__(self, key):
        return self.files[key].ref if key in self.files else self.states[key]

    def __exit__(self, *exc):
        for file in self.files.values():
            file.close()


def sent_back(result):
    """A worker's training result with its update (a plain state) written to a shared-memory
    file for the server, which maps and removes it (`taken_back`); the worker keeps no mapping.
    Masked or encoded updates travel serialised, as before."""
    state = result.state
    if not (available() and isinstance(state, dict) and all(isinstance(t, torch.Tensor) for t in state.values())):
        return result
    try:
        file = SharedState(state)
    except OSError:  # no room in /dev/shm: serialised, as before
        return result
    file.buffer = None  # the file stays for the server
    return dataclasses.replace(result, state=file.ref)


def taken_back(result):
    """The result with its update mapped from the worker's file, which is removed at once (the
    mapping keeps the pages until the update is let go)."""
    if not isinstance(result.state, SharedRef):
        return result
    try:
        return dataclasses.replace(result, state=attach(result.state))
    finally:
        Path(result.state.path).unlink(missing_ok=True)

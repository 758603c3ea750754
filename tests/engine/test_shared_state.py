"""States reach local worker processes through one shared-memory file, bit for bit, and the
file does not outlive the call (nor a killed server)."""

import os
import subprocess
import sys

import pytest
import torch

from bench.engine import shared_state
from bench.engine.local_backend import pack, unpack

pytestmark = pytest.mark.skipif(not shared_state.available(), reason="no /dev/shm here")

READ_IN_ANOTHER_PROCESS = """
import sys, torch
from bench.engine import shared_state
from bench.engine.local_backend import pack, unpack
state = shared_state.attach(unpack(sys.stdin.buffer.read()))["global"]
sys.stdout.buffer.write(pack({k: v.clone() for k, v in state.items()}))
"""


def state():
    gen = torch.Generator().manual_seed(3)
    return {
        "w": torch.randn(33, 7, generator=gen),
        "half": torch.randn(5, generator=gen).bfloat16(),
        "ids": torch.arange(9, dtype=torch.int64),
        "empty": torch.zeros(0, 4),
    }


def test_a_state_crosses_processes_bit_for_bit_and_its_file_goes_at_close():
    original = state()
    shared = shared_state.SharedState(original)
    path = shared.ref.path
    message = pack({"global": shared.ref})
    assert len(message) < 2000  # the tensors themselves do not travel
    done = subprocess.run([sys.executable, "-c", READ_IN_ANOTHER_PROCESS], input=bytes(message), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    received = unpack(done.stdout)
    for name, tensor in original.items():
        assert received[name].dtype == tensor.dtype and received[name].shape == tensor.shape
        assert torch.equal(received[name], tensor), name
    assert os.path.exists(path)
    shared.close()
    assert not os.path.exists(path)


def test_files_of_a_server_that_is_gone_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = shared_state.SHM / f"{shared_state.PREFIX}{dead.stdout.strip()}-test"
    stale.write_bytes(b"x")
    mine = shared_state.SharedState(state())
    shared_state.sweep()
    assert not stale.exists() and os.path.exists(mine.ref.path)  # a live server's file stays
    mine.close()


WRITE_BACK_IN_ANOTHER_PROCESS = """
import sys, torch
from bench.engine import shared_state
from bench.engine.local_backend import pack, unpack
from bench.federation.comm import Result
state = unpack(sys.stdin.buffer.read())
sys.stdout.buffer.write(pack(shared_state.sent_back(Result(3, 10, state, 0.5))))
"""


def test_an_update_comes_back_bit_for_bit_and_its_file_is_gone_once_taken():
    from bench.federation.comm import Result

    original = state()
    done = subprocess.run(
        [sys.executable, "-c", WRITE_BACK_IN_ANOTHER_PROCESS], input=bytes(pack(original)), capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert len(done.stdout) < 2000  # the worker's message names a file; the tensors stay out of the pipe
    sent = unpack(done.stdout)
    assert isinstance(sent.state, shared_state.SharedRef) and os.path.exists(sent.state.path)
    received = shared_state.taken_back(sent)
    assert not os.path.exists(sent.state.path)  # removed as soon as it is mapped
    assert (received.client, received.n_samples, received.loss) == (3, 10, 0.5)
    for name, tensor in original.items():
        assert received.state[name].dtype == tensor.dtype and torch.equal(received.state[name], tensor), name
    masked = Result(1, 2, "a masked update", 0.1)
    assert shared_state.sent_back(masked) is masked and shared_state.taken_back(masked) is masked


def test_no_room_in_shared_memory_means_serialised_and_no_file_left(monkeypatch):
    from bench.federation.comm import Result

    def full(fd, offset, length):
        raise OSError(28, "No space left on device")

    before = set(shared_state.SHM.glob(f"{shared_state.PREFIX}{os.getpid()}-*"))
    monkeypatch.setattr(shared_state.os, "posix_fallocate", full)
    result = Result(1, 5, state(), 0.2)
    assert shared_state.sent_back(result) is result  # the update travels in the message instead
    with shared_state.SharedStates({"global": state()}) as shared:
        assert isinstance(shared["global"], dict)  # a start state, too
    assert set(shared_state.SHM.glob(f"{shared_state.PREFIX}{os.getpid()}-*")) == before

import os
import threading
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("BENCH_WORKERS", "1")  # CLI runs in tests: one in-process worker starts fastest

NCBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ncbi-disease"

# Threads that may outlive a test because they only wait: tqdm's monitor, multiprocessing's
# resource sharer (blocked on accept), a ray.init left behind by its timeout (by design).
IDLE_THREADS = ("tqdm_monitor", "(_serve)", "ray-connect")


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """A thread a test leaves running takes CPU from every later test: on 2 cores a sampler left
    polling once made the rest of the suite's torch steps take twice the CPU time."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and not t.name.endswith(IDLE_THREADS)]
    for thread in left:
        thread.join(timeout=2)
    left = [t.name for t in left if t.is_alive()]
    assert not left, f"threads left running after the test: {', '.join(left)}"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The tiny synthetic corpus, generated once per test session."""
    from bench.synth.generate import write_corpus

    return write_corpus(tmp_path_factory.mktemp("synth"), seed=0, scale="tiny")


@pytest.fixture(scope="session")
def ncbi() -> Path:
    if not NCBI.is_dir():
        pytest.skip("../shared/data/ncbi-disease is absent")
    return NCBI

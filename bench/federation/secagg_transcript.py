"""The server's view of secure aggregation, message by message (`--secagg-transcript FILE`).

One JSON line per message the server received or sent: `round` (1-based, as in rounds.jsonl),
`kind` (public_key, encrypted_share, masked_vector, unmask_request, unmask_response; and
noised_vector, a lone round's one upload under client-level DP: little-endian float32, its
clipped update plus the round's noise, bench.federation.lone_round),
`direction` (to_server or from_server), `sender`, `receiver` (a client id, or "server"; a
relayed message keeps its two clients), `payload` (base64 of the bytes as sent). A masked vector
of b-bit values is packed as little-endian unsigned integers of ceil(b/8) bytes each. The model
broadcast and the plain metadata are not part of it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

KINDS = ("public_key", "encrypted_share", "masked_vector", "unmask_request", "unmask_response")  # the protocol's
NOISED = "noised_vector"  # a lone round's one upload (bench.federation.lone_round): no protocol runs


def value_bytes(bits: int) -> int:
    return (bits + 7) // 8


def pack_vector(vector: np.ndarray, bits: int) -> bytes:
    """b-bit values as little-endian unsigned integers of ceil(b/8) bytes each."""
    width = value_bytes(bits)
    as_bytes = np.asarray(vector, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return as_bytes[:, :width].tobytes()


def unpack_vector(payload: bytes, bits: int) -> np.ndarray:
    width = value_bytes(bits)
    raw = np.frombuffer(payload, dtype=np.uint8).reshape(-1, width)
    padded = np.zeros((len(raw), 8), dtype=np.uint8)
    padded[:, :width] = raw
    return padded.view("<u8").ravel()


class Transcript:
    """Counts every message's bytes (what rounds.jsonl reports) and, given a path, appends it."""

    def __init__(self, path: str | Path | None, round_: int):
        self.path, self.round_ = (Path(path) if path else None), round_
        self.up = self.down = 0
        self.lines: list[str] = []

    def record(self, kind: str, direction: str, sender, receiver, payload: bytes) -> None:
        assert kind in (*KINDS, NOISED) and direction in ("to_server", "from_server")
        if direction == "to_server":
            self.up += len(payload)
        else:
            self.down += len(payload)
        if self.path is not None:
            line = {
                "round": self.round_ + 1,
                "kind": kind,
                "direction": direction,
                "sender": sender,
                "receiver": receiver,
                "payload": base64.b64encode(payload).decode(),
            }
            self.lines.append(json.dumps(line))

    def record_vector(self, sender, vector: np.ndarray, bits: int) -> None:
        """A masked vector: packed only when it is written (its size is known without packing)."""
        if self.path is None:
            self.up += len(vector) * value_bytes(bits)
        else:
            self.record("masked_vector", "to_server", sender, "server", pack_vector(vector, bits))

    def flush(self) -> None:
        """Appended once per round, so a killed round leaves no half of itself."""
        if self.path is not None and self.lines:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # e.g. inside the run's own --out
            with self.path.open("a") as f:
                f.write("\n".join(self.lines) + "\n")
            self.lines = []


def read_transcript(path: str | Path) -> list[dict]:
    """The messages, payloads decoded to bytes."""
    out = []
    for line in Path(path).read_text().splitlines():
        message = json.loads(line)
        message["payload"] = base64.b64decode(message["payload"])
        out.append(message)
    return out

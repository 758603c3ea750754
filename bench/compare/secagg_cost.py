"""Secure aggregation's per-round overhead (not a test): prints a table and writes JSON.

    python -m bench.compare.secagg_cost [--clients 4,50] [--out results/perf]

The layout is minilm's layerskip top:2 upload (the trained blocks and the head, i2b2-2010's 9
NER labels); each client's update is random (the protocol's cost does not depend on its values).
Every client's side (key agreement, sealing shares, masking, answering) runs here one client
after another and is timed per client; the server's side (relaying, unmasking) apart. Bytes are
the sizes of the messages in the server's transcript, per client, up and down, beside the plain
fp32 upload. Clients that drop out would add the server's work of rebuilding their pairwise
masks; none drop here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bench.compare.perf import machine
from bench.config import ExperimentConfig
from bench.errors import OneLineArgumentParser, cli_entry
from bench.federation.secagg import SecureRound
from bench.federation.secagg_client import ClientParties, MaskLayout
from bench.federation.secagg_math import Quantiser
from bench.federation.secagg_network import key_exchange
from bench.model.build import build_model
from bench.model.layers import discover_layers
from bench.registry import METHODS


def upload_layout() -> tuple[list[str], list[tuple[int, ...]]]:
    """The tensors a minilm layerskip top:2 client uploads."""
    cfg = ExperimentConfig(task="i2b2-2010", method="layerskip", layers="top:2", model="minilm")
    model, _ = build_model("minilm", "ner", 9, seed=0)
    METHODS.get("layerskip")(cfg).configure(model, discover_layers(model))
    trained = [(n, tuple(p.shape)) for n, p in model.named_parameters() if p.requires_grad]
    return [n for n, _ in trained], [s for _, s in trained]


class TimedClients(ClientParties):
    """ClientParties that keeps each step's seconds (the clients' side, summed over clients)."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0

    def secagg(self, name, round_, per_client):
        t0 = time.perf_counter()
        out = super().secagg(name, round_, per_client)
        self.seconds += time.perf_counter() - t0
        return out


def one_round(n: int, names, shapes, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    quantiser = Quantiser(clip=1.0, total_weight=float(n * 100))
    layout = MaskLayout(names, shapes, quantiser)
    server = SecureRound(list(range(n)), 0, seed, quantiser, names, shapes)
    clients = TimedClients()
    server_s = time.perf_counter()
    key_exchange(server, clients)
    masked, mask_s = [], 0.0
    for c in sorted(server.graph):
        update = {name: rng.normal(0, 1e-3, shape).astype(np.float32) for name, shape in zip(names, shapes)}
        plain = sum(u.nbytes for u in update.values())
        t0 = time.perf_counter()
        masked.append(clients.kit(c, layout).mask_update(update, 100.0, plain))
        mask_s += time.perf_counter() - t0
    requests = server.requests(masked)
    answers = clients.secagg("answer", 0, requests)
    server.finish(answers)
    total_s = time.perf_counter() - server_s
    client_s = clients.seconds + mask_s
    up = server.transcript.up
    return {
        "clients": n,
        "degree": server.degree,
        "threshold": server.threshold,
        "client_s_mean": round(client_s / n, 3),
        "server_s": round(total_s - client_s, 3),
        "plain_up_mb_per_client": round(server.plain_bytes / n / 1e6, 3),
        "protocol_up_kb_per_client": round((up - server.plain_bytes) / n / 1e3, 2),
        "protocol_down_kb_per_client": round(server.transcript.down / n / 1e3, 2),
    }


@cli_entry
def main(argv=None) -> None:
    parser = OneLineArgumentParser(prog="python -m bench.compare.secagg_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="4,50", help="comma-separated client counts")
    parser.add_argument("--out", default="results/perf")
    args = parser.parse_args(argv)
    names, shapes = upload_layout()
    rows = [one_round(int(n), names, shapes) for n in args.clients.split(",")]
    print(
        f"{'clients':>7} {'degree':>6} {'t':>3} {'client s':>9} {'server s':>9} {'plain MB':>9} {'+up kB':>8} {'down kB':>8}"
    )
    for r in rows:
        print(
            f"{r['clients']:>7} {r['degree']:>6} {r['threshold']:>3} {r['client_s_mean']:>9} {r['server_s']:>9} "
            f"{r['plain_up_mb_per_client']:>9} {r['protocol_up_kb_per_client']:>8} {r['protocol_down_kb_per_client']:>8}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "secagg_cost.json").write_text(json.dumps({"rounds": rows, "machine": machine()}, indent=1) + "\n")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    raise SystemExit(main())

"""The simulation's network for secure aggregation: it carries messages between the clients'
side (anything with ClientParties.secagg: the workers that train the clients, or one
ClientParties in process) and the server (bench.federation.secagg.SecureRound), and nothing
else. The server object is handed messages only; the secrets stay on the clients' side.
"""

from __future__ import annotations

import numpy as np

from bench.federation.secagg import SecureRound
from bench.federation.secagg_client import ClientParties, MaskLayout


def key_exchange(server: SecureRound, clients) -> None:
    """Steps 1-2: each client draws its secrets and advertises its keys, then seals its shares;
    the server relays both."""
    adverts = clients.secagg("advertise", server.round_, {c: None for c in sorted(server.graph)})
    publics = server.relay_keys(adverts)  # a client whose worker died before advertising is out of the round
    sealed = clients.secagg("share_keys", server.round_, {c: (keys, server.threshold) for c, keys in publics.items()})
    clients.secagg("receive_shares", server.round_, server.relay_shares(sealed))


def unmask(server: SecureRound, clients, arrived: list, late: list = ()) -> tuple:
    """Steps 3-4: the masked vectors go in, the survivors answer the server's request, the server
    unmasks the sum -> (tensor -> summed update, tensor -> summed weight, costs); SecAggFailure
    when too few survived."""
    requests = server.requests(arrived, late)
    answers = clients.secagg("answer", server.round_, requests)
    return server.finish(answers)


def secure_sum(
    updates: dict[int, np.ndarray],
    weights: dict[int, float],
    quantiser,
    round_: int,
    seed: int,
    degree: int,
    threshold: int | None = None,
    drop_after_masking: set[int] = frozenset(),
    late: set[int] = frozenset(),
    transcript: str | None = None,
) -> tuple[np.ndarray, float, dict]:
    """The protocol on plain vectors: those in `drop_after_masking` share keys but never deliver,
    those in `late` deliver after the deadline (received, not summed). Returns (the weighted sum,
    the summed weight, costs) or raises SecAggFailure."""
    dim = len(next(iter(updates.values())))
    server = SecureRound(sorted(updates), round_, seed, quantiser, ["v"], [(dim,)], degree, threshold, transcript)
    clients = ClientParties()
    key_exchange(server, clients)
    layout = MaskLayout(["v"], [(dim,)], quantiser)
    sent = {
        c: clients.kit(c, layout).mask_update({"v": updates[c]}, weights[c], 8 * dim)
        for c in sorted(updates)
        if c not in drop_after_masking
    }
    on_time = [m for c, m in sent.items() if c not in late]
    sums, held, costs = unmask(server, clients, on_time, [m for c, m in sent.items() if c in late])
    return sums["v"], held["v"], {**costs, "threshold": server.threshold}

"""--plan's price for a shape no stored run has (another depth or rank of a model the store has
run): the slowest stored shape of the same model, dtype, length, batch and privacy, preferring the same
method and the same layout (one process or workers). The host probe times a bare matrix product,
several times what a training round achieves here (on this 2-core machine the stored minilm
shapes ran at 0.02-0.15 TFLOP/s of counted work against the probe's 0.16), so it is the last
resort. The slowest neighbour leans high but is no bound: with its own shape left out, a
stored configuration's wall time came to 0.21-3.75 of this price (results/ncbi/plan_calibration.md)."""

from __future__ import annotations


def _parts(key: str) -> dict[str, str]:
    """A shape key (bench.protocol.plan.shape_key) by field."""
    fields = ("model", "method", "layers", "dtype", "length", "batch", "rank", "layout", "privacy")
    return {"privacy": "", **dict(zip(fields, key.split("|")))}


def nearest(measured: dict[str, float], key: str) -> tuple[float, str] | None:
    """(TFLOP/s, where it comes from) for shape `key` from `measured` (shape key -> TFLOP/s of
    stored runs), or None without a stored shape of the same model, dtype, length, batch and privacy (plain
    steps, DP-SGD's, or DP-SGD's padded to a fixed shape)."""
    want = _parts(key)

    def like(*fields: str) -> list[float]:
        """The stored throughputs of shapes that agree with `want` on these fields and the model's."""
        same = ("model", "dtype", "length", "batch", "privacy", *fields)
        return [v for k, v in measured.items() if all(_parts(k).get(f) == want.get(f) for f in same)]

    for pool, what in (
        (like("method", "layout"), f"{want['method']} shapes"),
        (like("layout"), f"{want.get('layout')} shapes"),
        (like("method"), f"{want['method']} shapes of another layout"),
        (like(), "shapes"),
    ):
        if pool:
            return min(pool), f"the slowest stored {want['model']} {what}"
    return None

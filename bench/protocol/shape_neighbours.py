"""--plan's price for a shape no stored run has (another depth or rank of a model the store has
run): the slowest stored shape of the same model, dtype, length and batch, of the same method if
any, else of any. The host probe times a bare matrix product, several times what a training
round achieves here (on this 2-core machine the stored minilm shapes ran at 0.02-0.15 TFLOP/s of
counted work against the probe's 0.16), so it is the last resort; the slowest neighbour keeps
the estimate on the side of an upper bound."""

from __future__ import annotations


def _parts(key: str) -> dict[str, str]:
    """A shape key (bench.protocol.plan.shape_key) by field."""
    return dict(zip(("model", "method", "layers", "dtype", "length", "batch", "rank"), key.split("|")))


def nearest(measured: dict[str, float], key: str) -> tuple[float, str] | None:
    """(TFLOP/s, where it comes from) for shape `key` from `measured` (shape key -> TFLOP/s of
    stored runs), or None without a stored shape of the same model, dtype, length and batch."""
    want = _parts(key)
    alike = {
        k: v for k, v in measured.items() if all(_parts(k)[f] == want[f] for f in ("model", "dtype", "length", "batch"))
    }
    same_method = {k: v for k, v in alike.items() if _parts(k)["method"] == want["method"]}
    for pool, what in ((same_method, f"{want['method']} shapes"), (alike, "shapes")):
        if pool:
            return min(pool.values()), f"the slowest stored {want['model']} {what}"
    return None

"""How the report names a run's differential-privacy setting."""

from __future__ import annotations


def dp_label(cfg: dict) -> str | None:
    """A run's DP setting as the main table's DP column names it (None without DP): the level,
    and at sample level the unit and whether every client was composed (the data-free bound)."""
    if cfg.get("dp_epsilon") is None and cfg.get("noise_multiplier") is None:
        return None
    if cfg.get("dp_level") == "client":
        return "client"
    holders = ", every client composed" if cfg.get("dp_unit_holders") == "all" else ""  # the data-free bound
    return f"sample, per {cfg.get('dp_unit', 'row')}{holders}"

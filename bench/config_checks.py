"""ExperimentConfig's validation (bench.config), group by group: each group builds every
(ok, message) pair it checks of a config `c`, and the config raises the first failing message.
(Untyped: bench.config imports this module, not the other way round.)"""

from __future__ import annotations

BACKEND_NAMES = ("auto", "serial", "local", "ray")

Check = tuple[bool, str]  # (the setting is valid, the error that says why not)


def _check_sizes(c) -> list[Check]:
    return [
        (c.clients >= 1, f"clients must be >= 1, not {c.clients}"),
        (c.rounds >= 1, f"rounds must be >= 1, not {c.rounds}"),
        (c.local_epochs >= 1, f"local_epochs must be >= 1, not {c.local_epochs}"),
        (c.batch_size >= 1, f"batch_size must be >= 1, not {c.batch_size}"),
        (c.max_length >= 8, f"max_length must be >= 8, not {c.max_length}"),
        (c.workers >= 1, f"workers must be >= 1, not {c.workers}"),
        (c.gpus_per_worker >= 0, f"gpus_per_worker must be >= 0, not {c.gpus_per_worker}"),
    ]


def _check_training(c) -> list[Check]:
    return [
        (0 <= c.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), not {c.warmup_ratio}"),
        (c.length_buckets >= 0, f"length_buckets must be >= 0, not {c.length_buckets}"),
        (
            not (c.length_buckets and c.private),
            "length_buckets does not apply under DP (its batches are Poisson samples)",
        ),
        (0 < c.holdout_fraction < 1, f"holdout_fraction must be in (0, 1), not {c.holdout_fraction}"),
        (c.lr is None or c.lr > 0, f"lr must be > 0, not {c.lr}"),
        (c.dtype in ("float32", "bfloat16", "float16"), f"dtype must be float32, bfloat16 or float16, not {c.dtype!r}"),
        (c.backend in BACKEND_NAMES, f"backend must be one of {', '.join(BACKEND_NAMES)}, not {c.backend!r}"),
        (c.prefix_cache in ("on", "off"), f"prefix_cache must be on or off, not {c.prefix_cache!r}"),
        (c.frozen_mode in ("train", "eval"), f"frozen_mode must be train or eval, not {c.frozen_mode!r}"),
        (
            c.frozen_mode == "train" or c.method == "layerskip",
            f"frozen_mode eval applies to layerskip only, not {c.method}",
        ),
        (
            c.frozen_mode == "train" or not c.client_budgets,
            "frozen_mode eval with client_budgets is not supported: a block one client skips trains at another",
        ),
    ]


def _check_privacy(c) -> list[Check]:
    return [
        (c.dp_epsilon is None or c.noise_multiplier is None, "give --dp-epsilon or --noise-multiplier, not both"),
        (c.dp_epsilon is None or c.dp_epsilon > 0, f"dp_epsilon must be > 0, not {c.dp_epsilon}"),
        (
            c.noise_multiplier is None or c.noise_multiplier > 0,
            f"noise_multiplier must be > 0, not {c.noise_multiplier}",
        ),
        (0 < c.dp_delta < 1, f"dp_delta must be in (0, 1), not {c.dp_delta}"),
        (c.dp_level in ("sample", "client"), f"dp_level must be sample or client, not {c.dp_level!r}"),
        (
            c.dp_unit in ("row", "document", "patient"),
            f"dp_unit must be row, document or patient, not {c.dp_unit!r}",
        ),
        (c.dp_unit == "row" or c.dp_level == "sample", "dp_unit applies to sample-level DP (DP-SGD) only"),
        (
            c.dp_unit_holders in ("observed", "all"),
            f"dp_unit_holders must be observed or all, not {c.dp_unit_holders!r}",
        ),
        (
            c.dp_unit_holders == "observed" or c.dp_unit in ("document", "patient"),
            "--dp-unit-holders all applies to sample-level DP (--dp-epsilon or --noise-multiplier) by document or "
            "patient: give --dp-unit document or patient",
        ),
        (not c.secure_rng or c.private, "--secure-rng draws DP noise: give --dp-epsilon or --noise-multiplier"),
        (
            not c.dp_fixed_shape or (c.private and c.dp_level == "sample"),
            "--dp-fixed-shape pads DP-SGD's steps: give --dp-epsilon or --noise-multiplier at --dp-level sample",
        ),
        (  # a unit of any size may join a neighbouring dataset: only a public bound on its rows caps a step
            not c.dp_fixed_shape or c.dp_unit == "row" or c.dp_unit_max_rows is not None,
            "--dp-fixed-shape by document or patient needs --dp-unit-max-rows N: a public bound on the rows "
            "one unit adds to a step (the largest unit's size is not public)",
        ),
        (
            c.dp_unit_max_rows is None or (c.dp_unit in ("document", "patient") and c.dp_unit_max_rows >= 1),
            "--dp-unit-max-rows bounds a document's or patient's rows in a DP-SGD step: give --dp-unit "
            "document or patient and N >= 1",
        ),
    ]


def _check_uploads(c) -> list[Check]:
    """What bounds an upload: secure aggregation's quantisation, and DP's clipping."""
    return [
        (c.secagg in ("on", "off"), f"secagg must be on or off, not {c.secagg!r}"),
        (c.secagg == "off" or c.compress == "none", "secagg quantises uploads itself: use it with --compress none"),
        (c.secagg == "on" or not c.secagg_transcript, "--secagg-transcript needs --secagg on"),
        (16 <= c.secagg_bits <= 62 and c.secagg_clip > 0, "secagg_bits must be in [16, 62] and secagg_clip > 0"),
        (c.max_grad_norm > 0 and c.client_clip > 0, "clipping bounds must be > 0"),
    ]


def _check_rounds(c) -> list[Check]:
    return [
        (0 <= c.dropout < 1, f"dropout must be in [0, 1), not {c.dropout}"),
        (0 <= c.straggler_frac < 1, f"straggler_frac must be in [0, 1), not {c.straggler_frac}"),
        (c.max_retries >= 0, f"max_retries must be >= 0, not {c.max_retries}"),
        (c.patience >= 1, f"patience must be >= 1, not {c.patience}"),
        (c.min_delta >= 0, f"min_delta must be >= 0, not {c.min_delta}"),
        (c.test_every >= 0, f"test_every must be >= 0, not {c.test_every}"),
    ]


def _check_sampling(c) -> list[Check]:
    per_round = c.clients_per_round
    return [
        (
            c.train_subsample is None or c.train_subsample >= 2 * c.clients,
            f"train_subsample must be at least 2 x clients, not {c.train_subsample}",
        ),
        (
            c.val_subsample is None or c.val_subsample >= 1,
            f"val_subsample must be at least 1, not {c.val_subsample}",
        ),
        (
            per_round is None or 1 <= per_round <= c.clients,
            f"clients_per_round must be in [1, clients={c.clients}], not {per_round}",
        ),
    ]


# ExperimentConfig's validation, group by group; a group builds every (ok, message) it checks.
CHECKS = (_check_sizes, _check_training, _check_privacy, _check_uploads, _check_rounds, _check_sampling)

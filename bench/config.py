"""The configuration of one experiment: a dataclass validated on construction."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
import re
from dataclasses import dataclass

from bench.config_checks import CHECKS
from bench.errors import BenchError
from bench.federation.compress import codec_for

# How a run is executed, not what it computes: results are equal across these (timing and host
# fields aside), so they stay out of a run's identity and a grid may change them on resume.
EXECUTION = ("workers", "gpus_per_worker", "cpus_per_worker", "backend", "ray_address", "max_retries")
EXECUTION_ONLY = frozenset({*EXECUTION, "secagg_transcript"})
SOURCE_FINGERPRINTS: dict = {}  # task prefix -> its data's fingerprint, in the identity (bench.data.hf: "hf:")
DP_ONLY = frozenset(
    {
        "dp_level",
        "dp_unit",
        "dp_unit_holders",
        "dp_delta",
        "max_grad_norm",
        "client_clip",
        "dp_fixed_shape",
        "dp_unit_max_rows",
    }
)  # mean nothing without DP


@dataclass(frozen=True)
class ExperimentConfig:
    task: str
    method: str
    layers: str | None = None  # layerskip only; None: the model's default (bench.model.layers)
    partition: str = "iid"
    clients: int = 4
    clients_per_round: int | None = None  # None: every client, every round
    rounds: int = 3
    local_epochs: int = 1
    model: str = "minilm"
    dtype: str = "float32"  # weights and training; bfloat16 on GPUs that have it (aggregation is always fp32)
    seed: int = 0
    data_dir: str | None = None
    batch_size: int = 16
    lr: float | None = None  # None: the method's default
    warmup_ratio: float = 0.1
    length_buckets: int = 0  # > 0: batches of similar-length rows, sorted within windows of this many batches
    max_length: int = 128
    holdout_fraction: float = 0.1  # of each client's data, for per-client scores
    train_subsample: int | None = None  # a fixed random subset of the training examples; validation and test stay whole
    val_subsample: int | None = None  # a fixed, class-weighted validation subset (bench.engine.subsample)
    early_stop: bool = False  # stop once the validation metric has stalled (patience, min_delta)
    patience: int = 3  # rounds without a min_delta gain on validation that count as converged
    min_delta: float = 0.001
    test_every: int = 1  # score test every N rounds for curves; 0: only the reported states
    mu: float = 0.01  # FedProx proximal weight
    lora_rank: int = 8
    lora_alpha: int = 16
    dp_epsilon: float | None = None
    noise_multiplier: float | None = None
    dp_delta: float = 1e-5
    dp_level: str = "sample"  # sample: DP-SGD in each client; client: DP-FedAvg at the server
    dp_unit: str = "row"  # DP-SGD's privacy unit: an encoded row, a document (note), or a patient
    # which clients a unit may sit at: "observed" reads them from the data (sigma then depends on
    # where units sit); "all" assumes every training client, so sigma does not (bench.engine.unit_holders)
    dp_unit_holders: str = "observed"
    max_grad_norm: float = 1.0  # per-sample clipping bound (sample-level DP)
    secure_rng: bool = False  # DP noise from OS entropy: the stored seed does not reveal it (runs then differ)
    dp_fixed_shape: bool = False  # DP-SGD steps of one shape whatever the draw (bench.federation.fixed_shape)
    dp_unit_max_rows: int | None = None  # by document or patient: the most rows a drawn unit adds to a step (public)
    client_clip: float = 1.0  # per-update clipping bound (client-level DP)
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: int | None = None  # None: the machine's cores shared among workers
    backend: str = "auto"  # auto: serial for one worker; ray on GPUs or a cluster; else local processes
    ray_address: str | None = None
    compress: str = "none"  # uploads: none, fp16, bf16, int8, topk:F (bench.federation.compress)
    secagg: str = "off"  # on: secure aggregation of the uploads (bench.federation.secagg)
    secagg_clip: float = 1.0  # per-element clipping range of an update before fixed-point quantisation
    secagg_bits: int = 32  # width of the quantised, masked values
    secagg_transcript: str | None = None  # a JSON-lines file: every secure-aggregation message the server saw
    prefix_cache: str = "on"
    # layerskip: "eval" keeps every frozen block (and the embeddings) in eval mode, no dropout, as
    # the prefix cache computes them, so cache on or off and top:k or bottom:k train alike;
    # "train": frozen blocks follow the model (dropout), except where the cache stands in
    frozen_mode: str = "train"
    prefix_cache_mb: int = 4096  # memory budget; over it the run goes uncached (and says so)
    label_level: str | None = None
    text_column: str | None = None  # hf:SOURCE tasks (bench.data.hf): the columns to read, if not the usual
    label_column: str | None = None
    tokens_column: str | None = None
    tags_column: str | None = None
    site_column: str | None = None
    group_column: str | None = None
    client_budgets: str | None = None  # layerskip: "by-size" or a JSON/YAML file {client: blocks}
    dropout: float = 0.0  # chance a sampled client never returns, per round
    straggler_frac: float = 0.0  # chance a returning client misses the round's deadline
    max_retries: int = 2  # restarts of a crashed worker before its clients count as dropped

    def __post_init__(self):
        # Every check is evaluated before the first failing one is raised, in CHECKS order.
        for ok, message in [check for group in CHECKS for check in group(self)]:
            if not ok:
                raise BenchError(message)
        codec_for(self.compress)  # a bad spec is an error naming it

    @property
    def private(self) -> bool:
        return self.dp_epsilon is not None or self.noise_multiplier is not None

    @property
    def per_round(self) -> int:
        return self.clients_per_round or self.clients

    @property
    def threads_per_worker(self) -> int:
        return self.cpus_per_worker or max(1, (os.cpu_count() or 1) // self.workers)

    @property
    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        if self.ray_address or (self.workers > 1 and self.gpus_per_worker > 0):
            return "ray"
        return "local" if self.workers > 1 else "serial"

    @classmethod
    def from_dict(cls, values: dict) -> ExperimentConfig:
        """Build from a mapping (a grid cell, a stored config); unknown keys are errors.

        The grid form `early_stop: {patience: P, min_delta: D}` turns early stopping on."""
        values = {**values, **early_stop_settings(values.get("early_stop"))}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BenchError(f"unknown experiment setting(s): {', '.join(unknown)}")
        missing = [k for k in ("task", "method") if k not in values]
        if missing:
            raise BenchError(f"missing experiment setting(s): {', '.join(missing)}")
        return cls(**{k: as_declared(k, v) for k, v in values.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_settings(self, **changes) -> ExperimentConfig:
        """A copy with some settings changed, validated and coerced like a grid's."""
        return ExperimentConfig.from_dict({**self.to_dict(), **changes})

    def computed_settings(self) -> dict:
        """Every setting that changes what is computed: the run's identity (DP settings only
        under DP, so a no-DP cell is one cell whatever DP level a grid lists it under)."""
        ignored = EXECUTION_ONLY if self.private else EXECUTION_ONLY | DP_ONLY
        return {k: v for k, v in self.to_dict().items() if k not in ignored}

    def identity_settings(self) -> dict:
        """The computed settings that differ from their defaults (task and method always): what
        identities hash, so a setting added later with a default keeps existing identities."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        found = {k: v for k, v in self.computed_settings().items() if k in ("task", "method") or v != defaults[k]}
        sources = [fp(self.task[len(p) :]) for p, fp in SOURCE_FINGERPRINTS.items() if self.task.startswith(p)]
        return {**found, "source_fingerprint": sources[0]} if sources else found

    @property
    def run_id(self) -> str:
        """A readable prefix and a short hash of every computed setting, so two configurations
        that differ in anything (lr, model, rounds, budgets, ...) never share a folder.

        The hash covers the settings that differ from their defaults (task and method always),
        so a setting added later keeps existing identities; the full config is stored beside
        each result and compared before a folder is reused (`first_difference`), which catches a
        changed default."""
        digest = hashlib.sha256(json.dumps(self.identity_settings(), sort_keys=True).encode()).hexdigest()[:10]
        parts = [
            self.task,
            self.method + (f"-{self.layers}" if self.layers else ""),
            self.partition,
            f"c{self.clients}",
            f"s{self.seed}",
        ]
        if self.dp_epsilon is not None:
            parts.append(f"eps{self.dp_epsilon:g}")
        return re.sub(r"[^A-Za-z0-9._-]", "-", "__".join(parts + [digest]))


SETTING_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(ExperimentConfig)
}  # what a config that predates a setting had


def first_difference(stored: dict, cfg: ExperimentConfig) -> str | None:
    """The first computed setting (alphabetically) in which a stored config differs, or None.
    A setting the stored config predates counts as its default."""
    now = cfg.computed_settings()
    then = {
        **{k: v for k, v in SETTING_DEFAULTS.items() if k in now},
        **{k: v for k, v in stored.items() if k in now or k not in SETTING_DEFAULTS},
    }
    for key in sorted(set(now) | set(then)):
        if now.get(key, "<absent>") != then.get(key, "<absent>"):
            return f"{key} (stored {then.get(key, '<absent>')!r}, now {now.get(key, '<absent>')!r})"
    return None


FLOAT_FIELDS = {f.name for f in dataclasses.fields(ExperimentConfig) if str(f.type).startswith("float")}
INT_FIELDS = {f.name for f in dataclasses.fields(ExperimentConfig) if str(f.type).startswith("int")}


def as_declared(key: str, value):
    """Floats as floats (YAML reads `1e-4` as a string), whole numbers checked as such, hf:X/ and
    hf:./X as hf:X: one identity."""
    if key == "task" and isinstance(value, str) and ":" in value:
        prefix, _, source = value.partition(":")
        return f"{prefix}:{os.path.normpath(source)}" if source else value
    if key in INT_FIELDS and value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise BenchError(f"{key} must be a whole number, not {value!r}")  # a grid's `clients: two`, `rounds: 1.5`
    if key not in FLOAT_FIELDS or value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BenchError(f"{key} must be a number, not {value!r}") from None


def early_stop_settings(value) -> dict:
    """`early_stop` as a grid writes it (a mapping, or true/false) -> flat config fields."""
    if value is None or isinstance(value, bool):
        return {} if value is None else {"early_stop": value}
    if not isinstance(value, dict) or set(value) - {"patience", "min_delta"}:
        raise BenchError(f"early_stop must be true, false or {{patience, min_delta}}, not {value!r}")
    return {"early_stop": True, **value}

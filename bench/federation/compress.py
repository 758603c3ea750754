"""Compressed uploads (`--compress`): a client sends its update (new - start) in fewer bytes and
the server restores it before aggregation.

    none      the trained tensors as they are (the default)
    fp16      each update value as float16; bf16 as bfloat16
    int8      per tensor, round(x / s) in int8 with s = max|x| / 127 (values + one fp32 scale)
    topk:F    per tensor, the fraction F of entries largest in magnitude (fp32 values + int32
              indices), with error feedback: what was not sent is kept by the client and added
              to its next update (Stich et al. 2018; Karimireddy et al. 2019)

Bytes are the real payload: values, indices and scales at their stored widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.errors import BenchError
from bench.registry import Registry

State = dict[str, torch.Tensor]


@dataclass
class Packed:
    """One tensor's update as it travels."""

    values: torch.Tensor
    shape: tuple[int, ...]
    indices: torch.Tensor | None = None  # top-k: flat positions of `values`
    scale: torch.Tensor | None = None  # int8: the per-tensor fp32 scale

    @property
    def nbytes(self) -> int:
        extra = [t for t in (self.indices, self.scale) if t is not None]
        return sum(t.numel() * t.element_size() for t in [self.values, *extra])

    def restore(self) -> torch.Tensor:
        if self.indices is not None:
            flat = torch.zeros(int(torch.tensor(self.shape).prod()), dtype=torch.float32)
            flat[self.indices.long()] = self.values.float()
            return flat.view(self.shape)
        if self.scale is not None:
            return self.values.float() * self.scale
        return self.values.float().view(self.shape)


class Codec:
    keeps_residual = False

    def pack(self, x: torch.Tensor) -> Packed:
        raise NotImplementedError

    def encode(self, update: State, residual: State | None) -> tuple[dict[str, Packed], State | None]:
        """(what is sent, what the client keeps for next time: the unsent part, with error feedback)."""
        if residual is not None:
            update = {k: v + residual[k] for k, v in update.items()}
        packed = {k: self.pack(v.float()) for k, v in update.items()}
        left = {k: update[k].float() - packed[k].restore() for k in update} if self.keeps_residual else None
        return packed, left


CODECS: Registry[type[Codec]] = Registry("compression")


@CODECS.register("fp16")
class Half(Codec):
    dtype = torch.float16

    def pack(self, x):
        return Packed(x.to(self.dtype), tuple(x.shape))


@CODECS.register("bf16")
class BHalf(Half):
    dtype = torch.bfloat16


@CODECS.register("int8")
class Int8(Codec):
    def pack(self, x):
        scale = x.abs().max().clamp(min=1e-12) / 127.0
        return Packed(
            torch.round(x / scale).clamp(-127, 127).to(torch.int8), tuple(x.shape), scale=scale.reshape(1).float()
        )


class TopK(Codec):
    keeps_residual = True

    def __init__(self, fraction: float):
        self.fraction = fraction

    def pack(self, x):
        flat = x.flatten()
        k = max(1, int(round(self.fraction * flat.numel())))
        index = flat.abs().topk(k).indices.sort().values
        return Packed(flat[index].clone(), tuple(x.shape), indices=index.to(torch.int32))


def codec_for(spec: str) -> Codec | None:
    """None for `none`; raises a BenchError naming a bad spec."""
    if spec == "none":
        return None
    if spec.startswith("topk:"):
        try:
            fraction = float(spec.split(":", 1)[1])
        except ValueError:
            fraction = -1.0
        if not 0 < fraction <= 1:
            raise BenchError(f"--compress {spec}: topk:F needs a fraction F in (0, 1]")
        return TopK(fraction)
    return CODECS.get(spec)()


def payload_bytes(payload) -> int:
    """Bytes of an upload, compressed or not (a masked upload: its plain size; the protocol's
    extra bytes are counted apart, as secagg_bytes_*)."""
    if not isinstance(payload, dict):
        return payload.plain_bytes
    return sum(p.nbytes if isinstance(p, Packed) else p.numel() * p.element_size() for p in payload.values())


def restore_state(payload: dict[str, Packed], start: State) -> State:
    """The client's new state, as the server rebuilds it: start + the restored update."""
    return {k: (start[k].float() + p.restore()).to(start[k].dtype) for k, p in payload.items()}

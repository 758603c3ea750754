"""Shared by the engine tests: a watch on every client secret drawn in the test's own process."""

import os
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.federation import secagg_client, secagg_math


@pytest.fixture
def drawn_here(monkeypatch) -> list[tuple[str, int]]:
    """(what, process id) for every client secret drawn in this process from now on."""
    drawn: list[tuple[str, int]] = []
    real_generate = X25519PrivateKey.generate

    def generate():
        drawn.append(("x25519", os.getpid()))
        return real_generate()

    class WatchedOs:  # secagg_client's `os`: urandom watched, the rest the real module
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def urandom(n: int) -> bytes:
            drawn.append(("urandom", os.getpid()))
            return os.urandom(n)

    class WatchedSecrets:  # secagg_math's `secrets`: the Shamir coefficients
        @staticmethod
        def randbelow(n: int) -> int:
            drawn.append(("shamir", os.getpid()))
            return secrets.randbelow(n)

    monkeypatch.setattr(X25519PrivateKey, "generate", staticmethod(generate))
    monkeypatch.setattr(secagg_client, "os", WatchedOs())
    monkeypatch.setattr(secagg_math, "secrets", WatchedSecrets())
    return drawn

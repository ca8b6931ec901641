"""Reproducible randomness for simulations: child seed streams and blocked scalar draws."""

from __future__ import annotations

import math

import numpy as np


def child_seed(ss: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The child stream of ``ss`` at ``key`` (one index, or a path of them: ``child_seed(ss, 1, day,
    k)``), the same however often it is asked for."""
    return np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, *key))


class Draws:
    """Scalar random draws from one numpy Generator, taken in blocks.

    Each of numpy's scalar calls costs about a microsecond; the engine makes several per
    event. Drawing 1,024 standard variates at a time and scaling them is the same
    distribution, and just as reproducible: each kind of draw has its own block, so the
    sequence depends only on the seed and the order of the calls.
    """

    __slots__ = ("_block", "_e", "_ei", "_n", "_ni", "_u", "_ui", "rng", "seed")

    def __init__(self, seed: np.random.SeedSequence, block: int = 1024) -> None:
        self._block = block  # a per-incident substream draws a handful: small blocks
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._u: list[float] = []
        self._e: list[float] = []
        self._n: list[float] = []
        self._ui = self._ei = self._ni = 0

    def random(self) -> float:
        """Uniform on [0, 1)."""
        i = self._ui
        if i == len(self._u):
            self._u, i = self.rng.random(self._block).tolist(), 0
        self._ui = i + 1
        return self._u[i]

    def exponential(self, mean: float) -> float:
        """Exponential with this mean."""
        i = self._ei
        if i == len(self._e):
            self._e, i = self.rng.standard_exponential(self._block).tolist(), 0
        self._ei = i + 1
        return mean * self._e[i]

    def lognormal(self, mu: float, sigma: float) -> float:
        """``exp(N(mu, sigma))``."""
        i = self._ni
        if i == len(self._n):
            self._n, i = self.rng.standard_normal(self._block).tolist(), 0
        self._ni = i + 1
        return math.exp(mu + sigma * self._n[i])

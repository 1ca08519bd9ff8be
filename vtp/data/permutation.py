"""A seeded permutation of [0, n) evaluated one index at a time, in O(1) memory: for stores too large
to hold `torch.randperm(n)` (DataComp-1B: 1.4e9 rows would be 11 GB of int64).

A balanced Feistel network on the smallest power of four >= n (so both halves have the same number
of bits) is a bijection of that range; cycle-walking (apply it again while the value is >= n) turns
it into a bijection of [0, n) (Black & Rogaway 2002, "Ciphers with arbitrary finite domains").
The round function is splitmix64's finaliser over (seed, round, half); it need not be a good cipher,
only a good shuffle.
"""

from __future__ import annotations

_MASK64 = (1 << 64) - 1
ROUNDS = 6


def _mix(x: int) -> int:
    """splitmix64's finaliser (Steele, Lea & Flood 2014): a fast 64-bit avalanche."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


def feistel_index(i: int, n: int, seed: int) -> int:
    """The i-th element of a seeded permutation of range(n): a pure function of (i, n, seed)."""
    if not 0 <= i < n:
        raise IndexError(f"index {i} out of range for a permutation of {n}")
    half = max(1, ((n - 1).bit_length() + 1) // 2)  # bits per half: 4**half >= n
    low = (1 << half) - 1
    key = _mix((seed & _MASK64) ^ 0x9E3779B97F4A7C15)
    x = i
    while True:  # cycle-walk: at most ~4 rounds trips on average since 4**half < 4n
        left, right = x >> half, x & low
        for r in range(ROUNDS):
            left, right = right, left ^ (_mix((key + r * 0x632BE59BD9B4E019 + right) & _MASK64) & low)
        x = (left << half) | right
        if x < n:
            return x

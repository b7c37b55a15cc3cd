"""bfloat16 in numpy (algo/bf16.py): hand-computed bit patterns, ties to even, subnormals,
overflow to infinity, non-finite values kept non-finite, and every rounding checked against
an independent nearest-value search over random float32 bit patterns."""

from __future__ import annotations

import numpy as np
import pytest

from asyncdqn.algo.bf16 import from_bf16, round_bf16, to_bf16


def _enc(value: float) -> int:
    return int(to_bf16(np.array([value], np.float32))[0])


def _enc_bits(bits: int) -> int:
    return int(to_bf16(np.array([bits], np.uint32).view(np.float32))[0])


@pytest.mark.parametrize(("value", "pattern"), [
    (1.0, 0x3F80),  # float32 0x3F800000: the upper half, exactly
    (-2.5, 0xC020),  # 0xC0200000
    (0.0, 0x0000),
    (-0.0, 0x8000),  # the sign survives
    (1 + 2**-9, 0x3F80),  # a quarter ulp above 1: down
    (1 + 2**-8, 0x3F80),  # exactly halfway between 1 (0x3F80, even) and 1+2^-7 (0x3F81): to the even one
    (1 + 3 * 2**-8, 0x3F82),  # halfway between 0x3F81 and 0x3F82 (even): up
    (1 + 2**-8 + 2**-20, 0x3F81),  # just above halfway: up
    (-(1 + 2**-8 + 2**-20), 0xBF81),  # the same magnitude, negative: rounds away from zero too
    (2**-133, 0x0001),  # float32 0x00010000: bfloat16's smallest subnormal
    (2**-134, 0x0000),  # halfway between 0 and 2^-133: to the even one, zero
    (3 * 2**-134, 0x0002),  # halfway between 2^-133 (odd) and 2^-132 (even): up
    (1e-45, 0x0000),  # float32's smallest subnormal: far below bfloat16's
    (3.3895314e38, 0x7F7F),  # bfloat16's largest finite value, (2 - 2^-7) * 2^127
    (3.4028235e38, 0x7F80),  # float32's largest: past bfloat16's largest + half an ulp: infinity
    (-3.4028235e38, 0xFF80),
    (float("inf"), 0x7F80),
    (float("-inf"), 0xFF80),
])
def test_hand_computed_patterns(value: float, pattern: int) -> None:
    assert _enc(value) == pattern


def test_decoding_is_exact() -> None:
    codes = np.array([0x3F80, 0xC020, 0x3F81, 0x0001, 0x7F7F, 0x8000, 0x7F80, 0xFF80], np.uint16)
    out = from_bf16(codes)
    assert out.dtype == np.float32
    expected = [1.0, -2.5, 1 + 2**-7, 2**-133, (2 - 2**-7) * 2**127, -0.0, np.inf, -np.inf]
    assert out.tolist() == expected
    assert np.signbit(out[5])


def test_nan_stays_nan() -> None:
    """A NaN whose payload sits in the low 16 bits would truncate to infinity, and 0xFFFFFFFF plus the
    rounding would wrap to a zero: every NaN must come out a NaN (divergence must stay visible)."""
    for bits in (0x7FC00000, 0x7F800001, 0x7F807FFF, 0x7FFFFFFF, 0xFF800001, 0xFFFFFFFF):
        code = _enc_bits(bits)
        assert np.isnan(from_bf16(np.array([code], np.uint16))[0]), hex(bits)
        assert code >> 15 == bits >> 31  # the sign kept
    x = np.array([1.0, np.nan, -2.5, np.inf], np.float32)
    out = round_bf16(x)
    assert out[0] == 1.0 and np.isnan(out[1]) and out[2] == -2.5 and out[3] == np.inf


def test_every_rounding_is_the_nearest_value_ties_to_even() -> None:
    """Random finite float32 patterns against a search of the two bfloat16 neighbours in float64."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    bits = bits[(bits & 0x7F800000) != 0x7F800000]  # finite only
    bits = np.concatenate([bits, (bits & 0xFFFF0000) | 0x8000])  # and every one's exact halfway point
    x = bits.view(np.float32)
    lo_code = (bits >> 16).astype(np.uint16)  # truncation: the neighbour towards zero
    hi_code = lo_code + np.uint16(1)  # the neighbour away from zero (0x7F7F + 1 is infinity)
    lo = from_bf16(lo_code).astype(np.float64)
    hi = from_bf16(hi_code).astype(np.float64)
    # IEEE rounding overflows to infinity from bfloat16's largest value + half an ulp: compare with 2^128 there
    hi = np.where(np.isinf(hi), np.sign(hi) * 2.0**128, hi)
    d_lo = np.abs(x.astype(np.float64) - lo)
    d_hi = np.abs(hi - x.astype(np.float64))
    even_lo = (lo_code & 1) == 0
    want = np.where((d_lo < d_hi) | ((d_lo == d_hi) & even_lo), lo_code, hi_code)
    got = to_bf16(x)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(int(bits[i])), hex(int(got[i])), hex(int(want[i]))) for i in bad[:5]]
    # and the bound the exchanges rely on: at most 2^-8 of the value, relative, for normal values
    normal = (np.abs(x) >= 2.0**-126) & np.isfinite(from_bf16(got))
    err = np.abs(from_bf16(got)[normal].astype(np.float64) - x[normal])
    assert np.all(err <= 2.0**-8 * np.abs(x[normal].astype(np.float64)))


def test_shapes_and_non_contiguous_input() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 3
    codes = to_bf16(x[:, ::2])  # a strided view
    assert codes.shape == (3, 2) and codes.dtype == np.uint16
    np.testing.assert_array_equal(from_bf16(codes), round_bf16(np.ascontiguousarray(x[:, ::2])))
    np.testing.assert_allclose(from_bf16(codes), x[:, ::2], rtol=2.0**-8)

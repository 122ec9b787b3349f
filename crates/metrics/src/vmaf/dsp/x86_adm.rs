//! AVX2 versions of ADM's decoupling (level 0, and levels 1 to 3), entered only through a
//! [`super::Kernels`] table built for a level this CPU supports. Eight coefficients per step;
//! the columns left over after the last full block go to the reference kernel.

use std::arch::x86_64::*;

use super::adm::{BandRows, DecoupledRows, cos_1deg_sq, decouple_row, div_lookup};

#[inline]
#[target_feature(enable = "avx2")]
fn load8(src: &[i32]) -> __m256i {
    let src = &src[..8];
    // SAFETY: `src` holds exactly 8 readable values; the load needs no alignment.
    unsafe { _mm256_loadu_si256(src.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store8(dst: &mut [i32], v: __m256i) {
    let dst = &mut dst[..8];
    // SAFETY: `dst` holds exactly 8 writable values; the store needs no alignment.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) }
}

/// Sign-extends the low 16 bits of each lane (libvmaf stores level 0 in `int16_t`).
#[inline]
#[target_feature(enable = "avx2")]
fn narrow16(v: __m256i) -> __m256i {
    _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(v))
}

/// `x as f32` of sums of two products of 16-bit values, which lie in (-2^31, 2^31]: the one
/// value past `i32::MAX`, 2^31, wraps to `i32::MIN` in 32-bit lanes and is converted back here.
#[inline]
#[target_feature(enable = "avx2")]
fn sum_of_products_to_f32(x: __m256i) -> __m256 {
    let wrapped = _mm256_castsi256_ps(_mm256_cmpeq_epi32(x, _mm256_set1_epi32(i32::MIN)));
    _mm256_blendv_ps(_mm256_cvtepi32_ps(x), _mm256_set1_ps(2147483648.0), wrapped)
}

/// Bit `i` set where lane `i` of the orientations agree within one degree, in double precision
/// as the reference: `dp >= 0 && dp² >= cos²(1°)·|o|²·|t|²`, each term scaled by 1/4096 (a
/// multiplication by 2^-12 equals the reference's division: the values are integers, never
/// subnormal).
#[inline]
#[target_feature(enable = "avx2")]
fn angle_bits(o: [__m256i; 2], t: [__m256i; 2], cos_sq: __m256d) -> i32 {
    let dot = |a: [__m256i; 2], b: [__m256i; 2]| {
        let sum = _mm256_add_epi32(
            _mm256_mullo_epi32(a[0], b[0]),
            _mm256_mullo_epi32(a[1], b[1]),
        );
        sum_of_products_to_f32(sum)
    };
    let (ot_dp, o_mag_sq, t_mag_sq) = (dot(o, t), dot(o, o), dot(t, t));
    let scale = _mm256_set1_pd(1.0 / 4096.0);
    let mut bits = 0;
    for (half, shift) in [(0, 0), (1, 4)] {
        let widen = |x: __m256| {
            let x = if half == 0 {
                _mm256_castps256_ps128(x)
            } else {
                _mm256_extractf128_ps::<1>(x)
            };
            _mm256_mul_pd(_mm256_cvtps_pd(x), scale)
        };
        let (dp, o_sq, t_sq) = (widen(ot_dp), widen(o_mag_sq), widen(t_mag_sq));
        let bound = _mm256_mul_pd(_mm256_mul_pd(cos_sq, o_sq), t_sq);
        let agree = _mm256_and_pd(
            _mm256_cmp_pd::<_CMP_GE_OQ>(dp, _mm256_setzero_pd()),
            _mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_mul_pd(dp, dp), bound),
        );
        bits |= _mm256_movemask_pd(agree) << shift;
    }
    bits
}

/// The enhancement-gain limit of four lanes: `rst·limit` capped at `tb` where `ob > 0` and
/// floored at `tb` where `ob < 0`, truncated to an integer (`_mm256_min_pd(a, b)` is exactly
/// `if a < b { a } else { b }`). The result lies between 0 and `tb`, so within 16 bits.
#[inline]
#[target_feature(enable = "avx2")]
fn limited4(rst: __m128i, ob: __m128i, tb: __m128i, gain_limit: __m256d) -> __m128i {
    let scaled = _mm256_mul_pd(_mm256_cvtepi32_pd(rst), gain_limit);
    let tb = _mm256_cvtepi32_pd(tb);
    let positive = _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_cvtepi32_pd(ob), _mm256_setzero_pd());
    let limited = _mm256_blendv_pd(
        _mm256_max_pd(scaled, tb),
        _mm256_min_pd(scaled, tb),
        positive,
    );
    _mm256_cvttpd_epi32(limited)
}

/// Level-0 decoupling ([`super::adm::decouple_row_level0`]). Exact for 16-bit coefficients, all
/// that the level-0 wavelet stores; any input stays in bounds.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn decouple_row_level0_avx2(
    bands: BandRows<'_>,
    gain_limit: f64,
    out: DecoupledRows<'_>,
) {
    let n = bands.reference[0].len();
    let blocks = n / 8 * 8;
    let lookup = div_lookup();
    let cos_sq = _mm256_set1_pd(f64::from(cos_1deg_sq()));
    let limit = _mm256_set1_pd(gain_limit);
    let zero = _mm256_setzero_si256();
    let full_gain = _mm256_set1_epi32(32768);
    let round_q15 = _mm256_set1_epi64x(16384);
    let lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let DecoupledRows { restored, additive } = out;
    for j in (0..blocks).step_by(8) {
        let o = bands.reference.map(|row| load8(&row[j..]));
        let t = bands.distorted.map(|row| load8(&row[j..]));
        let angle = angle_bits([o[0], o[1]], [t[0], t[1]], cos_sq);
        for band in 0..3 {
            let (ob, tb) = (o[band], t[band]);
            // k = clamp((lookup[ob] · tb + 2^14) >> 15 as i32, 0, 2^15), 2^15 where ob is 0. The
            // low 32 bits of the shifted 64-bit product are the same for a logical shift.
            let index = _mm256_min_epi32(
                _mm256_max_epi32(_mm256_add_epi32(ob, full_gain), zero),
                _mm256_set1_epi32(65536),
            );
            // SAFETY: every index lies in 0..=65536, inside the table.
            let recip = unsafe { _mm256_i32gather_epi32::<4>(lookup.as_ptr(), index) };
            let product = |a: __m256i, b: __m256i| {
                _mm256_srli_epi64::<15>(_mm256_add_epi64(_mm256_mul_epi32(a, b), round_q15))
            };
            let even = product(recip, tb);
            let odd = product(_mm256_srli_epi64::<32>(recip), _mm256_srli_epi64::<32>(tb));
            let k = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
            let k = _mm256_min_epi32(_mm256_max_epi32(k, zero), full_gain);
            let o_zero = _mm256_cmpeq_epi32(ob, zero);
            let k = _mm256_blendv_epi8(k, full_gain, o_zero);
            // rst = ((k · ob + 2^14) >> 15) as i16: bits 15..31 of the product, which the 32-bit
            // product holds exactly.
            let rst = _mm256_mullo_epi32(k, ob);
            let rst = narrow16(_mm256_srai_epi32::<15>(_mm256_add_epi32(
                rst,
                _mm256_set1_epi32(16384),
            )));
            // The limit applies where the angles agree, k > 0 and ob != 0.
            let eligible = _mm256_andnot_si256(o_zero, _mm256_cmpgt_epi32(k, zero));
            let apply = _mm256_movemask_ps(_mm256_castsi256_ps(eligible)) & angle;
            let rst = if apply == 0 {
                rst
            } else {
                let half = |v: __m256i, high: bool| {
                    if high {
                        _mm256_extracti128_si256::<1>(v)
                    } else {
                        _mm256_castsi256_si128(v)
                    }
                };
                let limited = _mm256_set_m128i(
                    limited4(half(rst, true), half(ob, true), half(tb, true), limit),
                    limited4(half(rst, false), half(ob, false), half(tb, false), limit),
                );
                let mask = _mm256_cmpeq_epi32(
                    _mm256_and_si256(_mm256_set1_epi32(apply), lane_bits),
                    lane_bits,
                );
                _mm256_blendv_epi8(rst, limited, mask)
            };
            store8(&mut restored[band][j..], rst);
            store8(
                &mut additive[band][j..],
                narrow16(_mm256_sub_epi32(tb, rst)),
            );
        }
    }
    let [r0, r1, r2] = restored;
    let [a0, a1, a2] = additive;
    decouple_row::<true>(
        BandRows {
            reference: bands.reference.map(|row| &row[blocks..]),
            distorted: bands.distorted.map(|row| &row[blocks..]),
        },
        gain_limit,
        DecoupledRows {
            restored: [&mut r0[blocks..], &mut r1[blocks..], &mut r2[blocks..]],
            additive: [&mut a0[blocks..], &mut a1[blocks..], &mut a2[blocks..]],
        },
    );
}

/// Coefficients of levels 1 to 3 whose products and sums of two products stay below 2^51, where
/// the vector kernel converts them to doubles exactly.
const LEVEL123_BOUND: i32 = 1 << 25;

/// `floor(x / 2^s)` of signed 64-bit lanes (AVX2 shifts only logically by a variable count):
/// with the sign bit flipped, `x + 2^63` is unsigned, and its logical shift exceeds the
/// quotient by `2^63 >> s`.
#[inline]
#[target_feature(enable = "avx2")]
fn sra_var_epi64(x: __m256i, s: __m256i) -> __m256i {
    let top = _mm256_set1_epi64x(i64::MIN);
    _mm256_sub_epi64(
        _mm256_srlv_epi64(_mm256_xor_si256(x, top), s),
        _mm256_srlv_epi64(top, s),
    )
}

/// `x.clamp(0, 32768)` of signed 64-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn clamp_gain_epi64(x: __m256i) -> __m256i {
    let zero = _mm256_setzero_si256();
    let full = _mm256_set1_epi64x(32768);
    let x = _mm256_blendv_epi8(x, zero, _mm256_cmpgt_epi64(zero, x));
    _mm256_blendv_epi8(x, full, _mm256_cmpgt_epi64(x, full))
}

/// Signed 64-bit lanes below 2^51 in magnitude as doubles (the bits of `x + 1.5·2^52`).
#[inline]
#[target_feature(enable = "avx2")]
fn small_i64_to_f64(x: __m256i) -> __m256d {
    let magic = _mm256_set1_pd(6755399441055744.0);
    _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_add_epi64(x, _mm256_castpd_si256(magic))),
        magic,
    )
}

/// `o_h·t_h + o_v·t_v` of the even 32-bit lanes (the odd ones when shifted down first) in
/// 64-bit lanes, `as f32`, then as a double scaled by 1/4096.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_scaled(o: [__m256i; 2], t: [__m256i; 2]) -> __m256d {
    let sum = _mm256_add_epi64(_mm256_mul_epi32(o[0], t[0]), _mm256_mul_epi32(o[1], t[1]));
    // Exact in double (below 2^51), so the conversion to single rounds once, as Rust's.
    let single = _mm256_cvtpd_ps(small_i64_to_f64(sum));
    _mm256_mul_pd(_mm256_cvtps_pd(single), _mm256_set1_pd(1.0 / 4096.0))
}

/// The angle test of [`angle_bits`] for 64-bit lanes, as a mask per lane.
#[inline]
#[target_feature(enable = "avx2")]
fn angle_mask_64(o: [__m256i; 2], t: [__m256i; 2], cos_sq: __m256d) -> __m256i {
    let (dp, o_sq, t_sq) = (dot_scaled(o, t), dot_scaled(o, o), dot_scaled(t, t));
    let bound = _mm256_mul_pd(_mm256_mul_pd(cos_sq, o_sq), t_sq);
    _mm256_castpd_si256(_mm256_and_pd(
        _mm256_cmp_pd::<_CMP_GE_OQ>(dp, _mm256_setzero_pd()),
        _mm256_cmp_pd::<_CMP_GE_OQ>(_mm256_mul_pd(dp, dp), bound),
    ))
}

/// The 32-bit lanes of `v` moved down into the low halves of the 64-bit lanes (the odd lanes).
#[inline]
#[target_feature(enable = "avx2")]
fn odd(v: __m256i) -> __m256i {
    _mm256_srli_epi64::<32>(v)
}

/// The low 32 bits of the 64-bit lanes of `even` and `odd` as eight 32-bit lanes in order.
#[inline]
#[target_feature(enable = "avx2")]
fn interleave(even: __m256i, odd: __m256i) -> __m256i {
    _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd))
}

/// The low 32 bits of each 64-bit lane, sign-extended.
#[inline]
#[target_feature(enable = "avx2")]
fn sign_extend_low(x: __m256i) -> __m256i {
    let sign = _mm256_shuffle_epi32::<0b10_10_00_00>(_mm256_srai_epi32::<31>(x));
    _mm256_blend_epi32::<0b1010_1010>(x, sign)
}

/// The gain `k` of levels 1 to 3 (`gain_level123` of the reference) for the low 32-bit halves
/// of the 64-bit lanes of `recip` (the table's entry), `t`, `negative` (all ones where `o < 0`)
/// and `shift` (at most 17).
#[inline]
#[target_feature(enable = "avx2")]
fn gain_level123_64(recip: __m256i, t: __m256i, negative: __m256i, shift: __m256i) -> __m256i {
    let negative = sign_extend_low(negative);
    let shift = _mm256_and_si256(shift, _mm256_set1_epi64x(0xffff_ffff));
    let product = _mm256_mul_epi32(recip, t);
    // ×(−1) where o < 0: (p ^ −1) − (−1) = −p.
    let product = _mm256_sub_epi64(_mm256_xor_si256(product, negative), negative);
    // `1i32 << (14 + shift)`, sign-extended (2^31 wraps to −2^31 as in the reference).
    let round = _mm256_sllv_epi32(
        _mm256_set1_epi64x(1),
        _mm256_add_epi64(shift, _mm256_set1_epi64x(14)),
    );
    let k = sra_var_epi64(
        _mm256_add_epi64(product, sign_extend_low(round)),
        _mm256_add_epi64(shift, _mm256_set1_epi64x(15)),
    );
    clamp_gain_epi64(k)
}

/// Decoupling of levels 1 to 3 ([`super::adm::decouple_row`]), eight coefficients per step with
/// the gains in 64-bit lanes; a block with a coefficient of magnitude 2^25 or more (far beyond
/// what the wavelet of real pictures gives) goes to the reference kernel, as do the columns
/// left over after the last full block.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn decouple_row_level123_avx2(
    bands: BandRows<'_>,
    gain_limit: f64,
    out: DecoupledRows<'_>,
) {
    let n = bands.reference[0].len();
    let blocks = n / 8 * 8;
    let lookup = div_lookup();
    let cos_sq = _mm256_set1_pd(f64::from(cos_1deg_sq()));
    let limit = _mm256_set1_pd(gain_limit);
    let zero = _mm256_setzero_si256();
    let full_gain = _mm256_set1_epi32(32768);
    let round_q15 = _mm256_set1_epi64x(16384);
    let lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    let bound = _mm256_set1_epi32(LEVEL123_BOUND);
    let DecoupledRows {
        mut restored,
        mut additive,
    } = out;
    let mut j = 0;
    while j < blocks {
        let o = bands.reference.map(|row| load8(&row[j..]));
        let t = bands.distorted.map(|row| load8(&row[j..]));
        // |x| as unsigned (i32::MIN stays 2^31), compared signed against the bound.
        let too_big = [o[0], o[1], t[0], t[1]].iter().fold(zero, |acc, &x| {
            let magnitude = _mm256_abs_epi32(x);
            let over = _mm256_or_si256(
                _mm256_cmpgt_epi32(magnitude, _mm256_sub_epi32(bound, _mm256_set1_epi32(1))),
                _mm256_cmpgt_epi32(zero, magnitude),
            );
            _mm256_or_si256(acc, over)
        });
        if _mm256_testz_si256(too_big, too_big) == 0 {
            let [r0, r1, r2] = &mut restored;
            let [a0, a1, a2] = &mut additive;
            let span = j..j + 8;
            decouple_row::<false>(
                BandRows {
                    reference: bands.reference.map(|row| &row[span.clone()]),
                    distorted: bands.distorted.map(|row| &row[span.clone()]),
                },
                gain_limit,
                DecoupledRows {
                    restored: [r0, r1, r2].map(|r| &mut r[span.clone()]),
                    additive: [a0, a1, a2].map(|a| &mut a[span.clone()]),
                },
            );
            j += 8;
            continue;
        }
        let angle = interleave(
            angle_mask_64([o[0], o[1]], [t[0], t[1]], cos_sq),
            odd(angle_mask_64(
                [odd(o[0]), odd(o[1])],
                [odd(t[0]), odd(t[1])],
                cos_sq,
            )),
        );
        let angle = _mm256_movemask_ps(_mm256_castsi256_ps(angle));
        for band in 0..3 {
            let (ob, tb) = (o[band], t[band]);
            let magnitude = _mm256_abs_epi32(ob);
            let negative = _mm256_cmpgt_epi32(zero, ob);
            // shift = bit length − 15 from 2^15 up, else 0: `magnitude >> 8` converts to single
            // exactly, and its biased exponent is 126 + its bit length.
            let exponent = _mm256_srli_epi32::<23>(_mm256_castps_si256(_mm256_cvtepi32_ps(
                _mm256_srli_epi32::<8>(magnitude),
            )));
            let shift = _mm256_max_epi32(_mm256_sub_epi32(exponent, _mm256_set1_epi32(133)), zero);
            // msb = (|o| + 2^(shift−1)) >> shift (nothing added when shift is 0), at most 2^15.
            let round_msb = _mm256_srli_epi32::<1>(_mm256_sllv_epi32(_mm256_set1_epi32(1), shift));
            let msb = _mm256_srlv_epi32(_mm256_add_epi32(magnitude, round_msb), shift);
            let index =
                _mm256_min_epi32(_mm256_add_epi32(msb, full_gain), _mm256_set1_epi32(65536));
            // SAFETY: every index lies in 2^15..=2^16, inside the table.
            let recip = unsafe { _mm256_i32gather_epi32::<4>(lookup.as_ptr(), index) };
            let k = interleave(
                gain_level123_64(recip, tb, negative, shift),
                gain_level123_64(odd(recip), odd(tb), odd(negative), odd(shift)),
            );
            let o_zero = _mm256_cmpeq_epi32(ob, zero);
            let k = _mm256_blendv_epi8(k, full_gain, o_zero);
            // rst = ((k · ob + 2^14) >> 15) as i32: bits 15..46 of the 64-bit product.
            let rst_of = |k: __m256i, ob: __m256i| {
                _mm256_srli_epi64::<15>(_mm256_add_epi64(_mm256_mul_epi32(k, ob), round_q15))
            };
            let rst = interleave(rst_of(k, ob), rst_of(odd(k), odd(ob)));
            let eligible = _mm256_andnot_si256(o_zero, _mm256_cmpgt_epi32(k, zero));
            let apply = _mm256_movemask_ps(_mm256_castsi256_ps(eligible)) & angle;
            let rst = if apply == 0 {
                rst
            } else {
                let half = |v: __m256i, high: bool| {
                    if high {
                        _mm256_extracti128_si256::<1>(v)
                    } else {
                        _mm256_castsi256_si128(v)
                    }
                };
                let limited = _mm256_set_m128i(
                    limited4(half(rst, true), half(ob, true), half(tb, true), limit),
                    limited4(half(rst, false), half(ob, false), half(tb, false), limit),
                );
                let mask = _mm256_cmpeq_epi32(
                    _mm256_and_si256(_mm256_set1_epi32(apply), lane_bits),
                    lane_bits,
                );
                _mm256_blendv_epi8(rst, limited, mask)
            };
            store8(&mut restored[band][j..], rst);
            store8(&mut additive[band][j..], _mm256_sub_epi32(tb, rst));
        }
        j += 8;
    }
    let [r0, r1, r2] = restored;
    let [a0, a1, a2] = additive;
    decouple_row::<false>(
        BandRows {
            reference: bands.reference.map(|row| &row[blocks..]),
            distorted: bands.distorted.map(|row| &row[blocks..]),
        },
        gain_limit,
        DecoupledRows {
            restored: [&mut r0[blocks..], &mut r1[blocks..], &mut r2[blocks..]],
            additive: [&mut a0[blocks..], &mut a1[blocks..], &mut a2[blocks..]],
        },
    );
}

//! Reference kernel of ADM's decoupling (libvmaf's `integer_adm`): per coefficient, the part of
//! the distorted detail explained by the reference (restored) and the rest (additive impairment),
//! with the gain t/o from a reciprocal table and the enhancement-gain limit where the reference
//! and distorted orientations agree within one degree.

use std::sync::OnceLock;

/// 2^30 / i and its negation, indexed by `i + 32768`.
pub(crate) fn div_lookup() -> &'static [i32; 65537] {
    static TABLE: OnceLock<Box<[i32; 65537]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([0i32; 65537]);
        for i in 1..=32768i32 {
            let recip = (1i32 << 30) / i;
            table[(32768 + i) as usize] = recip;
            table[(32768 - i) as usize] = -recip;
        }
        table
    })
}

/// cos²(1°) in single precision, as libvmaf keeps it.
pub(crate) fn cos_1deg_sq() -> f32 {
    let cos = (1.0f64 * std::f64::consts::PI / 180.0).cos();
    (cos * cos) as f32
}

/// One row of the three orientation bands (h, v, d) of the reference and of the distorted
/// picture, all of the same length.
#[derive(Clone, Copy)]
pub(crate) struct BandRows<'a> {
    pub reference: [&'a [i32]; 3],
    pub distorted: [&'a [i32]; 3],
}

/// The decoupling's outputs for one row of each band.
pub(crate) struct DecoupledRows<'a> {
    pub restored: [&'a mut [i32]; 3],
    pub additive: [&'a mut [i32]; 3],
}

/// Q15 ratio t/o clamped to [0, 1], level 0 (16-bit coefficients).
#[inline]
fn gain_level0(lookup: &[i32; 65537], o: i32, t: i32) -> i64 {
    if o == 0 {
        return 32768;
    }
    let k = (i64::from(lookup[(o + 32768).clamp(0, 65536) as usize]) * i64::from(t) + 16384) >> 15;
    i64::from(k as i32).clamp(0, 32768)
}

/// Q15 ratio t/o clamped to [0, 1], levels 1 to 3: the divisor is first rounded to 15
/// significant bits.
#[inline]
fn gain_level123(lookup: &[i32; 65537], o: i32, t: i32) -> i64 {
    if o == 0 {
        return 32768;
    }
    let abs_o = o.unsigned_abs();
    let sign: i64 = if o < 0 { -1 } else { 1 };
    let (msb, shift) = if abs_o < 32768 {
        (abs_o, 0u32)
    } else {
        let k = 17 - abs_o.leading_zeros();
        (abs_o.wrapping_add(1 << (k - 1)) >> k, k)
    };
    let round = i64::from(1i32.wrapping_shl(14 + shift));
    let k = ((i64::from(lookup[(msb as usize + 32768).min(65536)]) * i64::from(t)) * sign + round)
        >> (15 + shift);
    k.clamp(0, 32768)
}

/// Decouples one row of level 0 (16-bit coefficients, `LEVEL0`) or of levels 1 to 3.
#[inline(always)]
pub(crate) fn decouple_row<const LEVEL0: bool>(
    bands: BandRows<'_>,
    gain_limit: f64,
    out: DecoupledRows<'_>,
) {
    let lookup = div_lookup();
    let cos_1deg_sq = f64::from(cos_1deg_sq());
    let [oh, ov, _] = bands.reference;
    let [th, tv, _] = bands.distorted;
    let DecoupledRows { restored, additive } = out;
    for j in 0..oh.len() {
        // The orientations agree within one degree (the gain limit applies only there).
        let (o_h, o_v) = (i64::from(oh[j]), i64::from(ov[j]));
        let (t_h, t_v) = (i64::from(th[j]), i64::from(tv[j]));
        let ot_dp = o_h * t_h + o_v * t_v;
        let o_mag_sq = o_h * o_h + o_v * o_v;
        let t_mag_sq = t_h * t_h + t_v * t_v;
        let dp = f64::from(ot_dp as f32) / 4096.0;
        let angle = dp >= 0.0
            && dp * dp
                >= cos_1deg_sq
                    * (f64::from(o_mag_sq as f32) / 4096.0)
                    * (f64::from(t_mag_sq as f32) / 4096.0);
        for band in 0..3 {
            let (ob, tb) = (bands.reference[band][j], bands.distorted[band][j]);
            let k = if LEVEL0 {
                gain_level0(lookup, ob, tb)
            } else {
                gain_level123(lookup, ob, tb)
            };
            let mut rst = ((k * i64::from(ob) + 16384) >> 15) as i32;
            if LEVEL0 {
                rst = rst as i16 as i32;
            }
            if angle && k > 0 && ob != 0 {
                let scaled = f64::from(rst) * gain_limit;
                let tbf = f64::from(tb);
                let limited = if ob > 0 {
                    if scaled < tbf { scaled } else { tbf }
                } else if scaled > tbf {
                    scaled
                } else {
                    tbf
                };
                rst = if LEVEL0 {
                    limited as i16 as i32
                } else {
                    limited as i32
                };
            }
            restored[band][j] = rst;
            additive[band][j] = if LEVEL0 {
                (tb - rst) as i16 as i32
            } else {
                tb.wrapping_sub(rst)
            };
        }
    }
}

/// [`decouple_row`] of level 0, the table's reference entry.
pub(crate) fn decouple_row_level0(bands: BandRows<'_>, gain_limit: f64, out: DecoupledRows<'_>) {
    decouple_row::<true>(bands, gain_limit, out)
}

/// [`decouple_row`] of levels 1 to 3, the table's reference entry.
pub(crate) fn decouple_row_level123(bands: BandRows<'_>, gain_limit: f64, out: DecoupledRows<'_>) {
    decouple_row::<false>(bands, gain_limit, out)
}

//! Objective picture quality: PSNR between two I420 frames (for codec tests and for
//! comparing recorded frames end to end), and SSIM between two luma planes (for
//! comparing what a terminal shows with the frame it was sent).

use super::frame::I420Frame;

/// Two frames of different sizes cannot be compared sample by sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compare a {a:?} frame with a {b:?} frame; scale one first")]
pub struct SizeMismatch {
    /// The first frame's (width, height).
    pub a: (u32, u32),
    /// The second frame's (width, height).
    pub b: (u32, u32),
}

/// Peak signal-to-noise ratio in dB over every Y, U and V sample:
/// `10 * log10(255^2 / MSE)`. `f64::INFINITY` for identical frames. Around 30 dB is a
/// visibly coded picture, 40 dB and more looks like the original.
///
/// # Errors
/// [`SizeMismatch`] when the frames differ in size.
pub fn psnr(a: &I420Frame, b: &I420Frame) -> Result<f64, SizeMismatch> {
    mse(a.as_bytes(), b.as_bytes(), a, b).map(mse_to_psnr)
}

/// PSNR in dB of the Y (luma) plane alone, the figure codec papers usually quote.
///
/// # Errors
/// [`SizeMismatch`] when the frames differ in size.
pub fn psnr_y(a: &I420Frame, b: &I420Frame) -> Result<f64, SizeMismatch> {
    mse(a.y(), b.y(), a, b).map(mse_to_psnr)
}

fn mse(x: &[u8], y: &[u8], a: &I420Frame, b: &I420Frame) -> Result<f64, SizeMismatch> {
    let (sa, sb) = ((a.width(), a.height()), (b.width(), b.height()));
    if sa != sb {
        return Err(SizeMismatch { a: sa, b: sb });
    }
    let sum: u64 = x
        .iter()
        .zip(y)
        .map(|(&p, &q)| {
            let d = u64::from(p.abs_diff(q));
            d * d
        })
        .sum();
    // Frames hold at least one sample (I420Frame is never empty).
    Ok(sum as f64 / x.len() as f64)
}

fn mse_to_psnr(mse: f64) -> f64 {
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Side of SSIM's window, samples (Wang et al. 2004, §III-C: 11x11, Gaussian).
pub const SSIM_WINDOW: usize = 11;

/// Standard deviation of SSIM's Gaussian window, samples (ibid.: 1.5).
const SSIM_SIGMA: f64 = 1.5;

/// SSIM's stabilizing constants `(K L)^2` for 8-bit samples (L = 255; ibid.: K1 = 0.01,
/// K2 = 0.03).
const SSIM_C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const SSIM_C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// Two luma planes SSIM cannot compare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsimError {
    /// The planes differ in size, or a plane's length is not a whole number of rows.
    #[error("cannot compare a {a} sample plane with a {b} sample plane, {width} wide")]
    Size {
        /// Samples in the first plane.
        a: usize,
        /// Samples in the second plane.
        b: usize,
        /// The row width given.
        width: usize,
    },
    /// The planes are smaller than the window in width or height.
    #[error("a {width}x{height} plane is smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window")]
    TooSmall {
        /// Plane width, samples.
        width: usize,
        /// Plane height, samples.
        height: usize,
    },
}

/// Mean structural similarity (SSIM) of two 8-bit luma planes, row-major and `width`
/// samples wide: Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from
/// error visibility to structural similarity", IEEE TIP 13(4), 2004, eq. 13 at every
/// position where an [`SSIM_WINDOW`]-sample Gaussian window (sigma 1.5) fits, averaged
/// (eq. 17), with K1 = 0.01, K2 = 0.03, L = 255. 1.0 for identical planes, lower as
/// structure, contrast or brightness differ; negative for an inverted picture.
///
/// # Errors
/// [`SsimError::Size`] when the planes differ in size or `width` does not divide them;
/// [`SsimError::TooSmall`] when either side is under [`SSIM_WINDOW`] samples.
pub fn ssim(a: &[u8], b: &[u8], width: usize) -> Result<f64, SsimError> {
    if a.len() != b.len() || width == 0 || !a.len().is_multiple_of(width) {
        return Err(SsimError::Size {
            a: a.len(),
            b: b.len(),
            width,
        });
    }
    let height = a.len() / width;
    if width < SSIM_WINDOW || height < SSIM_WINDOW {
        return Err(SsimError::TooSmall { width, height });
    }
    let taps = gaussian_taps();
    // Local means of x, y, x^2, y^2 and xy: the window's two separable passes.
    let moments: Vec<[f64; 5]> = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let (x, y) = (f64::from(x), f64::from(y));
            [x, y, x * x, y * y, x * y]
        })
        .collect();
    let across = filter_rows(&moments, width, &taps);
    let out_width = width - SSIM_WINDOW + 1;
    let local = filter_columns(&across, out_width, &taps);
    let total: f64 = local.iter().map(ssim_at).sum();
    Ok(total / local.len() as f64)
}

/// SSIM (eq. 13) from a window's local means of x, y, x^2, y^2 and xy.
fn ssim_at(&[mx, my, mxx, myy, mxy]: &[f64; 5]) -> f64 {
    let (vx, vy, cov) = (mxx - mx * mx, myy - my * my, mxy - mx * my);
    ((2.0 * mx * my + SSIM_C1) * (2.0 * cov + SSIM_C2))
        / ((mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2))
}

/// The normalized 1-D Gaussian window, [`SSIM_WINDOW`] taps.
fn gaussian_taps() -> [f64; SSIM_WINDOW] {
    let centre = (SSIM_WINDOW / 2) as f64;
    let mut taps = std::array::from_fn(|i| {
        (-((i as f64 - centre).powi(2)) / (2.0 * SSIM_SIGMA.powi(2))).exp()
    });
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

/// Each row filtered by `taps` where the window fits: `width - taps + 1` outputs a row.
fn filter_rows(data: &[[f64; 5]], width: usize, taps: &[f64]) -> Vec<[f64; 5]> {
    data.chunks_exact(width)
        .flat_map(|row| {
            row.windows(taps.len())
                .map(|window| weighted(window.iter(), taps))
        })
        .collect()
}

/// Each column filtered by `taps` where the window fits: `height - taps + 1` rows out.
fn filter_columns(data: &[[f64; 5]], width: usize, taps: &[f64]) -> Vec<[f64; 5]> {
    let rows = data.len() / width;
    (0..=rows - taps.len())
        .flat_map(|top| {
            (0..width).map(move |x| {
                let column = (0..taps.len()).map(|k| &data[(top + k) * width + x]);
                weighted(column, taps)
            })
        })
        .collect()
}

/// The sum of `values` weighted by `taps`, moment by moment.
fn weighted<'a>(values: impl Iterator<Item = &'a [f64; 5]>, taps: &[f64]) -> [f64; 5] {
    let mut sum = [0.0; 5];
    for (v, &t) in values.zip(taps) {
        (0..5).for_each(|m| sum[m] += t * v[m]);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

    /// A textured 32x24 plane: a diagonal ramp with a checker on top.
    fn texture() -> Vec<u8> {
        plane(32, 24, |x, y| {
            ((x * 4 + y * 3) % 200) as u8 + if (x / 2 + y / 2) % 2 == 0 { 40 } else { 0 }
        })
    }

    #[test]
    fn ssim_of_a_plane_with_itself_is_one() {
        let t = texture();
        assert!((ssim(&t, &t, 32).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_two_flat_planes_is_the_luminance_term() {
        // No variance anywhere: eq. 13 is (2 * 100 * 110 + C1) / (100^2 + 110^2 + C1).
        let (a, b) = (vec![100u8; 16 * 12], vec![110u8; 16 * 12]);
        let want =
            (2.0 * 100.0 * 110.0 + SSIM_C1) / (100.0f64.powi(2) + 110.0f64.powi(2) + SSIM_C1);
        assert!((ssim(&a, &b, 16).unwrap() - want).abs() < 1e-9);
    }

    #[test]
    fn ssim_falls_with_the_structure_lost() {
        let t = texture();
        let noisy: Vec<u8> = t
            .iter()
            .enumerate()
            .map(|(i, &v)| v.saturating_add(((i * 7919) % 23) as u8))
            .collect();
        let flat = vec![
            t.iter()
                .map(|&v| u32::from(v))
                .sum::<u32>()
                .div_ceil(t.len() as u32) as u8;
            t.len()
        ];
        let inverted: Vec<u8> = t.iter().map(|&v| 255 - v).collect();
        let (n, f, i) = (
            ssim(&t, &noisy, 32).unwrap(),
            ssim(&t, &flat, 32).unwrap(),
            ssim(&t, &inverted, 32).unwrap(),
        );
        assert!(n < 1.0 && n > f, "noisy {n}, flat {f}");
        assert!(f > i && i < 0.0, "flat {f}, inverted {i}");
        assert_eq!(ssim(&noisy, &t, 32), Ok(n), "symmetric");
    }

    #[test]
    fn ssim_refuses_mismatched_or_tiny_planes() {
        let t = texture();
        assert_eq!(
            ssim(&t, &t[..32 * 20], 32),
            Err(SsimError::Size {
                a: 32 * 24,
                b: 32 * 20,
                width: 32
            })
        );
        assert_eq!(
            ssim(&t, &t, 0).unwrap_err(),
            SsimError::Size {
                a: 768,
                b: 768,
                width: 0
            }
        );
        assert_eq!(
            ssim(&t[..32 * 10], &t[..32 * 10], 32),
            Err(SsimError::TooSmall {
                width: 32,
                height: 10
            })
        );
    }

    #[test]
    fn identical_frames_are_infinitely_similar() {
        let f = I420Frame::filled(8, 6, (100, 120, 140)).unwrap();
        assert_eq!(psnr(&f, &f), Ok(f64::INFINITY));
    }

    #[test]
    fn a_uniform_error_gives_the_textbook_value() {
        let a = I420Frame::filled(8, 6, (100, 120, 140)).unwrap();
        let b = I420Frame::filled(8, 6, (110, 110, 150)).unwrap(); // every sample off by 10
        let want = 10.0 * (255.0f64 * 255.0 / 100.0).log10(); // 28.13 dB
        assert!((psnr(&a, &b).unwrap() - want).abs() < 1e-9);
        let c = I420Frame::filled(8, 6, (100, 0, 0)).unwrap();
        assert_eq!(psnr_y(&a, &c), Ok(f64::INFINITY));
        assert!(psnr(&a, &c).unwrap() < 20.0);
    }

    #[test]
    fn frames_of_different_sizes_are_an_error() {
        let a = I420Frame::filled(8, 6, (0, 0, 0)).unwrap();
        let b = I420Frame::filled(6, 8, (0, 0, 0)).unwrap();
        assert_eq!(
            psnr(&a, &b),
            Err(SizeMismatch {
                a: (8, 6),
                b: (6, 8)
            })
        );
    }
}

//! Objective picture quality: PSNR between two I420 frames (for codec tests and for
//! comparing recorded frames end to end).

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

#[cfg(test)]
mod tests {
    use super::*;

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

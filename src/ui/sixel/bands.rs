//! The sixel string of an indexed image (DEC VT340 sixel graphics, as xterm documents
//! them in "Control Sequences", Sixel Graphics): the image goes in bands six pixels
//! tall; in each band, every color used there is one line of characters whose six bits
//! say which of the band's pixels in that column have the color (`?` + bits), repeats
//! run-length coded (`!count` + character), the lines of one band overprinted (`$`
//! returns to the band's start), `-` moves to the next band.

use crate::ui::halfblock::Rgb;

/// Appends to `out` the sixel image of `indices` (`width` × `height` palette indices,
/// row by row) with `palette` (at most 256 entries): the DCS
/// introducer with a 1:1 pixel aspect and the image's size, the palette as RGB
/// percentages, the bands, the string terminator. Nothing is appended for an empty
/// image.
pub fn encode(out: &mut Vec<u8>, palette: &[Rgb], indices: &[u8], width: usize, height: usize) {
    if width == 0 || height == 0 || indices.len() < width * height || palette.is_empty() {
        return;
    }
    // P1 9 (1:1), P2 1 (unset pixels keep what is under them); raster attributes 1:1.
    out.extend_from_slice(b"\x1bP9;1;0q\"1;1;");
    push_number(out, width);
    out.push(b';');
    push_number(out, height);
    for (i, color) in palette.iter().enumerate() {
        out.push(b'#');
        push_number(out, i);
        out.extend_from_slice(b";2;");
        for (k, c) in [color.r, color.g, color.b].into_iter().enumerate() {
            if k > 0 {
                out.push(b';');
            }
            push_number(out, (usize::from(c) * 100 + 127) / 255);
        }
    }
    let mut band = Band::new(palette.len(), width);
    for (n, rows) in indices[..width * height].chunks(width * 6).enumerate() {
        if n > 0 {
            out.push(b'-');
        }
        band.fill(rows, width);
        band.write(out);
    }
    out.extend_from_slice(b"\x1b\\");
}

/// One band's sixels per color, and which colors it uses where.
struct Band {
    width: usize,
    /// `sixels[color * width + x]`: the six bits of column `x` for `color`.
    sixels: Vec<u8>,
    /// Colors used in this band, in first-use order, with their first and last column.
    used: Vec<(u8, usize, usize)>,
    /// Per color, its position in `used` plus one (0: not used in this band).
    slot: Vec<u16>,
}

impl Band {
    fn new(colors: usize, width: usize) -> Self {
        Self {
            width,
            sixels: vec![0; colors * width],
            used: Vec::with_capacity(colors),
            slot: vec![0; colors],
        }
    }

    /// Sets the bits of up to six rows of indices (`rows`, row by row).
    fn fill(&mut self, rows: &[u8], width: usize) {
        for (bit, row) in rows.chunks(width).enumerate() {
            for (x, &color) in row.iter().enumerate() {
                let c = usize::from(color);
                match self.slot[c] {
                    0 => {
                        self.used.push((color, x, x));
                        // At most 256 colors.
                        self.slot[c] = self.used.len() as u16;
                    }
                    s => {
                        let (_, first, last) = &mut self.used[usize::from(s) - 1];
                        *first = (*first).min(x);
                        *last = (*last).max(x);
                    }
                }
                self.sixels[c * self.width + x] |= 1 << bit;
            }
        }
    }

    /// Writes the band's color lines (run-length coded) and clears it for the next.
    fn write(&mut self, out: &mut Vec<u8>) {
        for (n, &(color, first, last)) in self.used.iter().enumerate() {
            if n > 0 {
                out.push(b'$');
            }
            out.push(b'#');
            push_number(out, usize::from(color));
            let line = &mut self.sixels[usize::from(color) * self.width..][..self.width];
            // Columns before `first` stay as they are: move there with blanks.
            if first > 0 {
                push_run(out, b'?', first);
            }
            let mut x = first;
            while x <= last {
                let bits = line[x];
                let run = line[x..=last].iter().take_while(|&&b| b == bits).count();
                push_run(out, b'?' + bits, run);
                x += run;
            }
            line[first..=last].fill(0);
            self.slot[usize::from(color)] = 0;
        }
        self.used.clear();
    }
}

/// `count` times `sixel`, as `!count` + `sixel` where that is shorter.
fn push_run(out: &mut Vec<u8>, sixel: u8, count: usize) {
    if count > 3 {
        out.push(b'!');
        push_number(out, count);
        out.push(sixel);
    } else {
        // One to three bytes: pushed, not a memset call each.
        for _ in 0..count {
            out.push(sixel);
        }
    }
}

/// `n` in decimal.
fn push_number(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `sixel` with icy_sixel (an independent decoder): (width, height, RGBA).
    fn decode(sixel: &[u8]) -> (usize, usize, Vec<u8>) {
        let image = icy_sixel::SixelImage::decode(sixel).expect("a valid sixel string");
        (image.width, image.height, image.pixels)
    }

    #[test]
    fn an_image_decodes_back_to_its_pixels() {
        // 13 x 14: a partial last band and columns that differ.
        let (width, height) = (13, 14);
        let palette = [
            Rgb::new(0, 0, 0),
            Rgb::new(255, 0, 0),
            Rgb::new(0, 255, 0),
            Rgb::new(0, 0, 255),
        ];
        let indices: Vec<u8> = (0..width * height)
            .map(|i| ((i % width) / 4 + (i / width) % 2) as u8 % 4)
            .collect();
        let mut out = Vec::new();
        encode(&mut out, &palette, &indices, width, height);
        assert!(out.starts_with(b"\x1bP") && out.ends_with(b"\x1b\\"));
        let (w, h, rgba) = decode(&out);
        // The decoder counts whole bands; rows past the image have no pixel set.
        assert_eq!((w, h.min(height)), (width, height));
        for (i, &index) in indices.iter().enumerate() {
            let c = palette[usize::from(index)];
            assert_eq!(&rgba[i * 4..i * 4 + 3], &[c.r, c.g, c.b], "pixel {i}");
        }
    }

    #[test]
    fn long_runs_are_run_length_coded() {
        let (width, height) = (200, 6);
        let mut out = Vec::new();
        let palette = [Rgb::new(10, 20, 30)];
        encode(&mut out, &palette, &vec![0; width * height], width, height);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("#0!200~"), "{text}");
        assert!(text.len() < 60, "{} bytes", text.len());
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 255, 123_456] {
            push_number(&mut out, n);
            out.push(b' ');
        }
        assert_eq!(out, b"0 7 10 255 123456 ");
    }

    #[test]
    fn an_empty_image_writes_nothing() {
        let mut out = Vec::new();
        encode(&mut out, &[Rgb::new(0, 0, 0)], &[], 0, 0);
        encode(&mut out, &[], &[0; 4], 2, 2);
        assert!(out.is_empty());
    }
}

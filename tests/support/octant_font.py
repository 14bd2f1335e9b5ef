#!/usr/bin/python3
"""Adds block-mosaic glyphs (Unicode 16 octants and the older blocks they complete) to a
monospace TrueType font, for measuring the octant renderer in a real terminal: no font on
Debian 12 draws U+1CD00-1CDE5 yet.

Usage: octant_font.py SOURCE.ttf OUT.ttf FAMILY < MAPPING
MAPPING: one "CODEPOINT PATTERN" pair per line, both hexadecimal; bit 2*row+col of
PATTERN is the cell's pixel at col (0 left, 1 right), row (0 top .. 3 bottom), as
rtc-cli's `Blitter::Octant` numbers them (Unicode's OCTANT-n is bit n-1).

The font's cell is set to whole pixels, as a terminal that draws the mosaics itself
(alacritty's and rio's built-in glyphs, st's boxdraw patch) puts them: every advance is
half an em and the line is one em (ascent 3/4, descent 1/4, no line gap), so at
12 pt and 96 dpi (16 px per em) a cell is 8x16 px and each octant 4x4 px, with no
antialiased edge. The descent must hold the underscore: kitty grows the cell until the
underscore fits (DejaVu's reaches 0.236 em below the baseline; with a 3/16 descent the
cell was 17 px tall and every glyph's four rows of 4 px sat a pixel off the cell's). Each glyph fills its part of that cell: the line split in four rows,
the advance in two columns. Letters keep their outlines (they may overhang the narrower
cell). The font is renamed FAMILY (the source's license asks that a modified font not
keep its name).
"""

import sys

from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont


def glyph_for(pattern, advance, ascent, descent):
    """A TrueType glyph with one rectangle per set pixel (clockwise, as TrueType fills)."""
    pen = TTGlyphPen(None)
    row_height = (ascent - descent) / 4
    columns = [(0, advance // 2), (advance // 2, advance)]
    for bit in range(8):
        if pattern & (1 << bit) == 0:
            continue
        row, col = divmod(bit, 2)
        top = round(ascent - row * row_height)
        bottom = round(ascent - (row + 1) * row_height)
        left, right = columns[col]
        pen.moveTo((left, bottom))
        pen.lineTo((left, top))
        pen.lineTo((right, top))
        pen.lineTo((right, bottom))
        pen.closePath()
    return pen.glyph()


def whole_pixel_cell(font):
    """Sets the metrics that make a cell whole pixels (see above); (advance, ascent,
    descent) in font units."""
    em = font["head"].unitsPerEm
    advance, ascent, descent = em // 2, em * 3 // 4, -(em // 4)
    hmtx = font["hmtx"].metrics
    for name, (width, lsb) in hmtx.items():
        if width:
            hmtx[name] = (advance, lsb)
    hhea, os2 = font["hhea"], font["OS/2"]
    hhea.ascent, hhea.descent, hhea.lineGap = ascent, descent, 0
    hhea.advanceWidthMax = advance
    os2.sTypoAscender, os2.sTypoDescender, os2.sTypoLineGap = ascent, descent, 0
    os2.usWinAscent, os2.usWinDescent = ascent, -descent
    os2.xAvgCharWidth = advance
    return advance, ascent, descent


def main():
    source, out, family = sys.argv[1:4]
    font = TTFont(source)
    advance, ascent, descent = whole_pixel_cell(font)
    glyf = font["glyf"]
    added = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        codepoint, pattern = (int(word, 16) for word in line.split())
        name = f"mosaic{codepoint:05X}"
        glyf[name] = glyph_for(pattern, advance, ascent, descent)  # appended to the order
        font["hmtx"][name] = (advance, 0)
        added[codepoint] = name
    font.setGlyphOrder(glyf.glyphOrder)
    for table in font["cmap"].tables:
        # Format 4 maps the Basic Multilingual Plane only; format 12 maps all planes.
        for codepoint, name in added.items():
            if table.format == 12 or (table.format == 4 and codepoint <= 0xFFFF):
                table.cmap[codepoint] = name
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):
            record.string = family
        elif record.nameID == 6:
            record.string = family.replace(" ", "")
    font.save(out)


if __name__ == "__main__":
    main()

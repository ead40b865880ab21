#!/usr/bin/env bash
# Makes crates/facelike-plot/fonts/DejaVuSans-plot.ttf: DejaVu Sans cut down to printable ASCII
# plus a few symbols the plots use (± · − ≈ …), so the picture code needs no system font.
# Needs `pip install fonttools` and Debian's fonts-dejavu-core.
set -euo pipefail
out="$(dirname "$0")/../crates/facelike-plot/fonts/DejaVuSans-plot.ttf"
pyftsubset /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
  --unicodes="U+0020-007E,U+00B1,U+00B7,U+2212,U+2248,U+2026,U+00D7,U+2013" \
  --layout-features='' --no-hinting --desubroutinize --output-file="$out"
ls -l "$out"

#!/usr/bin/env bash
# Every gallery command against the real PostgreSQL + pgvector server gives the same output as
# the embedded store: index, search (by face and identity, exact), pca, map (TSV), projector,
# train. Photos: a small LFW subset from the shared folder (plus face_recognition's sample
# photos). Needs FACELIKE_TEST_PG_URL (scripts/pg-dev.sh start).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/test.d/lib.bash

[ -n "${FACELIKE_TEST_PG_URL:-}" ] || skip_or_fail "PostgreSQL + pgvector (FACELIKE_TEST_PG_URL)" \
  "start one with scripts/pg-dev.sh start and set FACELIKE_TEST_PG_URL=\$(scripts/pg-dev.sh url)"
BIN="${FACELIKE_BIN:-target/release/facelike}"
SAMPLES="$("$BIN" samples path)"
[ -d "$SAMPLES" ] || skip_or_fail "sample photos" "run facelike samples fetch"

tmp=$(mktemp -d)
schema="suite_$$"
cleanup() {
  rm -rf "$tmp"
  scripts/pg-dev.sh psql -q -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
[ -n "${PG_SUITE_KEEP:-}" ] && trap - EXIT && echo "keeping $tmp"

# Photos: the sample photos, and 12 LFW people with 3 to 6 photos each when the shared folder is here.
mkdir -p "$tmp/photos"
cp "$SAMPLES"/*.jpg "$tmp/photos/"
shared="${FACELIKE_SHARED:-../shared}"
n=0
if [ -d "$shared/data/lfw_deepfunneled" ]; then
  for d in "$shared"/data/lfw_deepfunneled/*/; do
    c=$(ls "$d" | wc -l)
    if [ "$c" -ge 3 ] && [ "$c" -le 6 ]; then
      cp -r "$d" "$tmp/photos/"
      n=$((n + 1))
      [ "$n" -ge 12 ] && break
    fi
  done
fi
photos=$(find "$tmp/photos" -type f | wc -l)

case "$FACELIKE_TEST_PG_URL" in *\?*) pg="$FACELIKE_TEST_PG_URL&schema=$schema" ;; *) pg="$FACELIKE_TEST_PG_URL?schema=$schema" ;; esac
dir="$tmp/g"
fail() { echo "postgres suite: $*" >&2; exit 1; }

# index: same counts; a second run skips everything.
"$BIN" index "$tmp/photos" --gallery "$dir" --json > "$tmp/idx-dir.json"
"$BIN" index "$tmp/photos" --gallery "$pg" --json > "$tmp/idx-pg.json"
python3 - "$tmp/idx-dir.json" "$tmp/idx-pg.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("images", "indexed", "faces", "no_faces"):
    assert a["summary"][k] == b["summary"][k], (k, a["summary"], b["summary"])
assert a["gallery"] == b["gallery"], (a["gallery"], b["gallery"])
PY
"$BIN" index "$tmp/photos" --gallery "$pg" --json | python3 -c '
import json, sys; s = json.load(sys.stdin)["summary"]; assert s["indexed"] == 0 and s["skipped"] == s["images"], s'

# search: identical JSON lines, by face and by identity, exact.
queries=$(ls "$tmp"/photos/*.jpg | head -n 4)
for by in face identity; do
  # shellcheck disable=SC2086
  "$BIN" search $queries --gallery "$dir" -k 5 --by "$by" --exact --json > "$tmp/s-dir-$by.json"
  # shellcheck disable=SC2086
  "$BIN" search $queries --gallery "$pg" -k 5 --by "$by" --exact --json > "$tmp/s-pg-$by.json"
  cmp -s "$tmp/s-dir-$by.json" "$tmp/s-pg-$by.json" || fail "search --by $by differs"
  [ -s "$tmp/s-pg-$by.json" ] || fail "search --by $by gave nothing"
done
# HNSW (built on request): the same top match for each query.
# shellcheck disable=SC2086
"$BIN" search $queries --gallery "$pg" -k 1 --ann --json > "$tmp/s-pg-ann.json"
python3 - "$tmp/s-dir-face.json" "$tmp/s-pg-ann.json" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert [r["matches"][0]["path"] for r in a] == [r["matches"][0]["path"] for r in b]
PY

# pca, map (TSV coordinates), projector: the same numbers (faces sorted by source path,
# since face ids follow commit order).
"$BIN" pca --gallery "$dir" > "$tmp/pca-dir.txt"
"$BIN" pca --gallery "$pg" > "$tmp/pca-pg.txt"
cmp -s "$tmp/pca-dir.txt" "$tmp/pca-pg.txt" || fail "pca differs"
"$BIN" map --gallery "$dir" --method pca --out "$tmp/map-dir.tsv" >/dev/null
"$BIN" map --gallery "$pg" --method pca --out "$tmp/map-pg.tsv" >/dev/null
# The same point per face up to float summation order (rows come in commit order).
python3 - "$tmp/map-dir.tsv" "$tmp/map-pg.tsv" <<'PY' || fail "map differs"
import sys
def rows(p):
    out = {}
    for line in open(p).read().splitlines()[1:]:
        x, y, ident, src = line.split("\t")
        out.setdefault(src, []).append((float(x), float(y), ident))
    return {k: sorted(v) for k, v in out.items()}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert a.keys() == b.keys()
for k in a:
    for p, q in zip(a[k], b[k]):
        assert p[2] == q[2] and abs(abs(p[0]) - abs(q[0])) < 1e-9 and abs(abs(p[1]) - abs(q[1])) < 1e-9, (k, p, q)
PY
"$BIN" projector --gallery "$dir" --out "$tmp/proj-dir" >/dev/null
"$BIN" projector --gallery "$pg" --out "$tmp/proj-pg" >/dev/null
cmp -s <(paste <(tail -n +2 "$tmp/proj-dir/metadata.tsv") "$tmp/proj-dir/tensors.tsv" | sort) \
       <(paste <(tail -n +2 "$tmp/proj-pg/metadata.tsv") "$tmp/proj-pg/tensors.tsv" | sort) || fail "projector differs"

# train runs on the PostgreSQL gallery (it needs identities with several faces: the LFW subset).
[ "$n" -ge 4 ] && "$BIN" train --gallery "$pg" --out "$tmp/adapter.safetensors" --epochs 2 --identities 4 --faces 2 >/dev/null
[ "$n" -lt 4 ] || [ -s "$tmp/adapter.safetensors" ] || fail "train wrote no adapter"

# One-line errors.
err=$("$BIN" search "$SAMPLES/obama.jpg" --gallery "postgres://nobody:wrong@${FACELIKE_TEST_PG_URL##*@}" 2>&1 >/dev/null || true)
case "$err" in *"refused the password of user nobody"*) ;; *) fail "wrong password: $err" ;; esac
[ "$(echo "$err" | wc -l)" -eq 1 ] || fail "wrong password: not one line: $err"
echo "postgres suite: $photos photos; index, search (face, identity, HNSW), pca, map, projector match the embedded store$([ "$n" -ge 4 ] && echo "; train ran")"

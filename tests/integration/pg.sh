# PostgreSQL for the tests (sourced by lib.sh and with-pg.sh): a server of the test's own,
# made by initdb in a temporary directory and run by pg_ctl on a free loopback port with TLS
# (a self-signed certificate the clients verify) and scram passwords; role "atrium" owns the
# databases the tests make. The server runs as the system user postgres (initdb refuses root).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

# pg_start DIR: the server, its files in DIR; exports ATRIUM_TEST_PG_DIR (also its socket
# directory), _PORT, _PWFILE (atrium's password) and _CA (the server's certificate).
pg_start() {
        local d=$1 port
        [ -x "$PG_BIN/initdb" ] || { echo "# no PostgreSQL server binaries (install postgresql-15)"; return 1; }
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
                -keyout "$d/server.key" -out "$d/server.crt" >/dev/null 2>&1 || return 1
        head -c 18 /dev/urandom | base64 >"$d/su.pw"
        head -c 18 /dev/urandom | base64 >"$d/atrium.pw"
        chmod 600 "$d/atrium.pw" "$d/server.key"
        chown postgres: "$d" "$d/server.key" "$d/server.crt" "$d/su.pw"
        chmod 711 "$d"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$d/data" -U postgres --pwfile="$d/su.pw" \
                --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 \
                >"$d/initdb.log" 2>&1 || { sed 's/^/# initdb: /' "$d/initdb.log"; return 1; }
        echo "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$d -c ssl=on -c ssl_cert_file=$d/server.crt -c ssl_key_file=$d/server.key -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >"$d/options"
        pg_up "$d" || return 1
        export ATRIUM_TEST_PG_DIR=$d ATRIUM_TEST_PG_PORT=$port ATRIUM_TEST_PG_PWFILE=$d/atrium.pw ATRIUM_TEST_PG_CA=$d/server.crt
        pg_psql postgres -c "CREATE ROLE atrium LOGIN PASSWORD '$(cat "$d/atrium.pw")'" >/dev/null
}

# pg_up DIR: the server in DIR started (again), its options as pg_start set them.
pg_up() {
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 -o "$(cat "$1/options")" \
                start >"$1/pg_ctl.log" 2>&1 || { sed 's/^/# pg_ctl: /' "$1/pg_ctl.log" "$1/server.log"; return 1; }
}

# pg_down DIR: the server stopped as an administrator would (its sessions ended, data kept).
pg_down() {
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null 2>&1
}

# pg_stop DIR: the server stopped (at once: its data is thrown away).
pg_stop() {
        [ -f "$1/data/postmaster.pid" ] || return 0
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$1/data" -m immediate -w -t 30 stop >/dev/null 2>&1
}

# pg_psql DB ARGS...: psql as the superuser over the server's socket, unaligned, no headers.
pg_psql() {
        local db=$1
        shift
        psql -X -q -h "$ATRIUM_TEST_PG_DIR" -p "$ATRIUM_TEST_PG_PORT" -U postgres -d "$db" -At -v ON_ERROR_STOP=1 "$@"
}

# pg_createdb DB: a database owned by atrium (nothing when it is there).
pg_createdb() {
        [ "$(pg_psql postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ] ||
                pg_psql postgres -c "CREATE DATABASE \"$1\" OWNER atrium"
}

# pg_url DB: how atriumd reaches DB (TLS, the server's certificate verified).
pg_url() {
        echo "postgresql://atrium@127.0.0.1:$ATRIUM_TEST_PG_PORT/$1?sslmode=verify-full&sslrootcert=$ATRIUM_TEST_PG_CA"
}

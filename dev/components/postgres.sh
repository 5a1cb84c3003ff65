# PostgreSQL from Debian's server package, one throwaway cluster on 127.0.0.1.
PG_BIN=/usr/lib/postgresql/$POSTGRES_MAJOR/bin
PG_DATA=$MOOC_RUN/postgres

postgres_install() {
  [ -x "$PG_BIN/postgres" ] || apt_install "postgresql-$POSTGRES_MAJOR"
}

# PostgreSQL refuses to run as root: when we are root, run it as the `postgres` system user.
# setpriv execs in place, so the pid we record is the server's own.
PG_AS_USER=()
[ "$(id -u)" -ne 0 ] || PG_AS_USER=(setpriv --reuid=postgres --regid=postgres --init-groups)

postgres_start() {
  rm -rf "$PG_DATA" && mkdir -p "$PG_DATA"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DATA"
  local pwfile="$PG_DATA.pw"
  credential postgres-password >"$pwfile"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$pwfile"
  "${PG_AS_USER[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U mooc --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$MOOC_RUN/postgres-initdb.log" 2>&1
  rm -f "$pwfile"
  start_daemon postgres "${PG_AS_USER[@]}" "$PG_BIN/postgres" -D "$PG_DATA" \
    -c listen_addresses=127.0.0.1 -c port="$MOOC_PG_PORT" -c unix_socket_directories="$PG_DATA" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
  wait_until PostgreSQL 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$MOOC_PG_PORT" ||
    die "PostgreSQL did not start; see $MOOC_RUN/postgres.log"
  PGPASSWORD=$(credential postgres-password) "$PG_BIN/createdb" -h 127.0.0.1 -p "$MOOC_PG_PORT" -U mooc mooc
}

# SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to disconnect.
postgres_stop_signal() { echo INT; }

postgres_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$MOOC_PG_PORT"; }

postgres_env() {
  echo "export DATABASE_URL=postgres://mooc:$(credential postgres-password)@127.0.0.1:$MOOC_PG_PORT/mooc"
}

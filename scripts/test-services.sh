#!/usr/bin/env bash
# Starts, if not already answering, the servers the lab's tests run against, on loopback only:
# a PostgreSQL cluster (127.0.0.1:55432) and an S3-compatible server (moto, 127.0.0.1:55433), both
# under target/test-services. Source it: it exports CODECLAB_TEST_POSTGRES, CODECLAB_TEST_S3 and the
# AWS_* variables the S3 client reads. Quiet and quick when both already run.
services_dir="$(pwd)/target/test-services"
mkdir -p "$services_dir"

pg_port=55432
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
pg_data="$services_dir/postgres"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -n "$pg_bin" ] && ! "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    mkdir -p "$pg_data"
    [ "$(id -u)" -eq 0 ] && chown postgres "$pg_data" "$services_dir"
    as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust >/dev/null
  fi
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w \
    -o "-h 127.0.0.1 -p $pg_port -k $pg_data -c max_connections=300 -c fsync=off" start >/dev/null ||
    echo "warning: PostgreSQL did not start; see $pg_data/server.log" >&2
fi
if [ -n "$pg_bin" ] && "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
  export CODECLAB_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi

s3_port=55433
s3_venv="$services_dir/s3-venv"
s3_up() { curl -s -o /dev/null "http://127.0.0.1:$s3_port/"; }
if ! s3_up; then
  if [ ! -x "$s3_venv/bin/moto_server" ]; then
    { python3 -m venv "$s3_venv" && "$s3_venv/bin/pip" install -q 'moto[server]' >/dev/null; } ||
      echo "warning: could not install moto; S3 tests will report it" >&2
  fi
  nohup "$s3_venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$services_dir/s3.log" 2>&1 &
  for _ in $(seq 50); do s3_up && break; sleep 0.2; done
fi
if s3_up; then
  export AWS_ENDPOINT="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  curl -s -o /dev/null -X PUT "$AWS_ENDPOINT/codeclab-test"
  export CODECLAB_TEST_S3="s3://codeclab-test"
fi

#!/usr/bin/env bash
# The last step of `make run`: check the web port, then run supervisord with config/supervisord.conf. Without
# REDIS_URL, scripts/private_redis.py adds a private Redis to supervisord's programs. supervisord restarts any
# of Redis, daphne, the workers and the monitor that dies. Ctrl-C reaches supervisord, which stops them all.
set -u
port=${PORT:-8000}
workers=${WORKERS:-1}
daphnes=${DAPHNES:-1}
dask_workers=${DASK_WORKERS:-0}
dask_port=${DASK_PORT:-8786}

case $workers in
  '' | *[!0-9]* | 0) echo "make run: WORKERS must be a whole number of at least 1, not '$workers'." >&2
    echo "  How to fix: make run WORKERS=2" >&2; exit 1 ;;
esac
case $daphnes in
  '' | *[!0-9]* | 0) echo "make run: DAPHNES must be a whole number of at least 1, not '$daphnes'." >&2
    echo "  How to fix: make scale DAPHNES=2" >&2; exit 1 ;;
esac
case $dask_workers in
  '' | *[!0-9]*) echo "make run: DASK_WORKERS must be a whole number (0: no Dask cluster), not '$dask_workers'." >&2
    echo "  How to fix: make cluster DASK_WORKERS=2" >&2; exit 1 ;;
esac
dask_schedulers=0
if [ "$dask_workers" -gt 0 ]; then
  dask_schedulers=1
  # The RQ workers spread CV fits over the local cluster, unless pointed at another one.
  export RUNWATCH_DASK_SCHEDULER=${RUNWATCH_DASK_SCHEDULER:-tcp://127.0.0.1:$dask_port}
fi
if ! python - "$port" <<'PY'
import socket, sys
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except (OSError, ValueError, OverflowError):
        sys.exit(1)
PY
then
  echo "make run: cannot serve on 127.0.0.1:$port: the port is in use (or not a port number)." >&2
  echo "  How to fix: stop whatever uses it (\`ss -ltnp | grep :$port\` shows it), or pick another: make run PORT=8001" >&2
  exit 1
fi

echo
echo "Runwatch is starting at http://127.0.0.1:$port/  (admin: /admin/, queues: /admin/rq/)"
echo "Starting $workers worker(s), the monitor and $daphnes daphne process(es) sharing port $port, under supervisord,"
if [ "$dask_workers" -gt 0 ]; then
  echo "and a Dask scheduler on 127.0.0.1:$dask_port with $dask_workers worker(s) of 1 thread; CV runs fit on"
  echo "RUNWATCH_DASK_SCHEDULER=$RUNWATCH_DASK_SCHEDULER."
fi
echo "which restarts any that dies."
echo "Press Ctrl-C to stop everything."
echo
# The tests point these at their own folders, beside a developer's `make run`.
export WORKERS=$workers DAPHNES=$daphnes PORT=$port DASK_WORKERS=$dask_workers DASK_SCHEDULERS=$dask_schedulers \
  DASK_PORT=$dask_port RUNWATCH_SUPERVISOR_DIR=${RUNWATCH_SUPERVISOR_DIR:-$PWD/.runwatch/supervisor}
mkdir -p "$RUNWATCH_SUPERVISOR_DIR"
mkdir -p "$RUNWATCH_SUPERVISOR_DIR/programs"
# --record-port: `make worker` and `make cli` read the port there (config/settings.py) unless told another.
exec python scripts/private_redis.py --dir "${RUNWATCH_REDIS_DIR:-.runwatch/redis}" --supervisor-dir "$RUNWATCH_SUPERVISOR_DIR" \
  --record-port "${RUNWATCH_STATE_DIR:-.runwatch}/redis-port" -- supervisord -n -c config/supervisord.conf

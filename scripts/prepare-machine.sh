#!/usr/bin/env bash
# Make this machine able to run every test: the Debian tools the tests drive (promtool,
# Prometheus, Alertmanager, supervisord, Chromium, database clients, wrk, zip), the local
# PostgreSQL/MariaDB/Redis running, and pg_stat_statements preloaded. Idempotent: what is
# already there is left alone. Installing and restarting need root; without it, say what is
# missing and carry on (the tests that need a missing tool then fail or skip, naming it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "prepare: not root (or no apt-get): not installing tools or restarting services" >&2
  exit 0
fi

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
command -v supervisord >/dev/null || need_apt+=(supervisor)
command -v chromium >/dev/null || need_apt+=(chromium)
# Restore-drill tests dump and restore with the real clients.
command -v mariadb-dump >/dev/null || need_apt+=(mariadb-client)
command -v pg_dump >/dev/null || need_apt+=(postgresql-client)
command -v wrk >/dev/null || need_apt+=(wrk)  # benchmarks/restore_drill.py loads /metrics
command -v zip >/dev/null || need_apt+=(zip)
command -v unzip >/dev/null || need_apt+=(unzip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "prepare: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need_apt[@]}" >/dev/null
fi
# Installing the Debian packages starts their daemons; the tests run their own on free ports.
# Stop only the services this run just installed, through their init script or unit: a
# Prometheus or Alertmanager that was already there (or that someone else runs) is left alone.
for pkg in ${need_apt[@]+"${need_apt[@]}"}; do
  case $pkg in
    prometheus | prometheus-alertmanager)
      echo "prepare: stopping the $pkg service the package install started"
      service "$pkg" stop >/dev/null 2>&1 || true
      ;;
  esac
done

# Start the machine's services if one stopped (commands from the machine's notes).
pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
mariadb-admin -uroot ping >/dev/null 2>&1 || start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
for _ in $(seq 1 30); do
  if pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli ping >/dev/null 2>&1 && mariadb-admin -uroot ping >/dev/null 2>&1; then break; fi
  sleep 1
done

# The slow-statement collector reads pg_stat_statements, which must be preloaded by the server.
# Append to the list: whatever else the server preloads stays.
preload=$(psql -h 127.0.0.1 -U postgres -tAc "show shared_preload_libraries")
if [[ ",${preload// /}," != *,pg_stat_statements,* ]]; then
  echo "prepare: enabling pg_stat_statements (PostgreSQL restart)"
  preload=${preload:+$preload, }pg_stat_statements
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET shared_preload_libraries = '${preload//\'/\'\'}'"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main restart
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi


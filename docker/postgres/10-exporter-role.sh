#!/bin/sh
# Run by the postgres image on its first start (/docker-entrypoint-initdb.d/): the exporter
# watches this server through a login role in pg_monitor, never as the superuser. pg_monitor
# reads pg_stat_activity, pg_stat_statements and the settings the collector needs, and nothing
# else. The password is the stack's generated secret `exporter_db_password`.
set -eu
role=${MW_EXPORTER_ROLE:-maintwatch_exporter}
password=$(cat "${MW_SECRETS_DIR:-/run/secrets}/exporter_db_password")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=role="$role" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password' IN ROLE pg_monitor;
SQL

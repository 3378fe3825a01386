#!/usr/bin/env bash
# Register the workers, migrate the schema on the coordinator, then distribute it.
set -euo pipefail
psql_c() { docker compose -f "$(dirname "$0")/docker-compose.yml" exec -T coordinator psql -v ON_ERROR_STOP=1 -U qsampling -d qsampling "$@"; }
psql_c -c "SELECT citus_set_coordinator_host('coordinator', 5432);"
psql_c -c "SELECT citus_add_node('worker1', 5432);"
psql_c -c "SELECT citus_add_node('worker2', 5432);"
QSAMPLING_DATABASE_URL="postgresql+asyncpg://qsampling:${POSTGRES_PASSWORD}@127.0.0.1:5432/qsampling" \
  qsampling db upgrade
psql_c < "$(dirname "$0")/distribute.sql"

#!/bin/sh
# One-shot schema job (docker-compose.yml, service temporal-schema), run with
# temporalio/admin-tools: creates Temporal's two PostgreSQL databases on
# first start and upgrades their schemas to the image's version on every
# start. temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD from the environment.
set -eu
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
# The admin-tools image carries the schema files here.
schema=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}/postgresql/v12

setup() {
  db=$1 dir=$2
  # An existing, versioned database only needs the upgrade.
  if temporal-sql-tool --db "$db" update-schema -d "$dir"; then
    echo "temporal-schema: $db is current"
    return
  fi
  # First start (or a half-finished one): create, version, upgrade. A
  # database that exists already is not an error here.
  temporal-sql-tool --db "$db" create-database || echo "temporal-schema: $db exists"
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$dir"
  echo "temporal-schema: $db created"
}

setup temporal "$schema/temporal/versioned"
setup temporal_visibility "$schema/visibility/versioned"

#!/bin/sh
# One-shot job (docker-compose.yml, service temporal-namespace), run with
# temporalio/admin-tools: waits for the frontend, registers the namespace
# and Joinery's search attributes. JOINERY_SEARCH_ATTRIBUTES lists
# name=Type pairs; internal/deploy checks that it is exactly
# internal/stack.SearchAttributes. Idempotent: what exists is kept.
#
# TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE (both or neither) are
# this job's client certificate: compose's frontend requires one (mTLS),
# and the certs job issues it to this job alone.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_TLS_CA_FILE:?}" "${TEMPORAL_TLS_SERVER_NAME:?}"
: "${JOINERY_NAMESPACE:?}" "${JOINERY_NAMESPACE_RETENTION:?}" "${JOINERY_SEARCH_ATTRIBUTES:?}"

cert=${TEMPORAL_TLS_CERT_FILE:-}
key=${TEMPORAL_TLS_KEY_FILE:-}
if { [ -n "$cert" ] && [ -z "$key" ]; } || { [ -z "$cert" ] && [ -n "$key" ]; }; then
  echo "temporal-namespace: set both TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE, or neither" >&2
  exit 2
fi
for f in "$cert" "$key"; do
  if [ -n "$f" ] && [ ! -r "$f" ]; then
    echo "temporal-namespace: cannot read $f (the certs job's client certificate for this job)" >&2
    exit 2
  fi
done

t() {
  if [ -n "$cert" ]; then
    temporal --address "$TEMPORAL_ADDRESS" --tls-ca-path "$TEMPORAL_TLS_CA_FILE" \
      --tls-server-name "$TEMPORAL_TLS_SERVER_NAME" --tls-cert-path "$cert" --tls-key-path "$key" "$@"
  else
    temporal --address "$TEMPORAL_ADDRESS" --tls-ca-path "$TEMPORAL_TLS_CA_FILE" \
      --tls-server-name "$TEMPORAL_TLS_SERVER_NAME" "$@"
  fi
}

# Every 2 s, by default for 3 minutes: the server starts beside this job.
max=${JOINERY_REGISTER_WAIT_TRIES:-90}
tries=0
until t operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -gt "$max" ]; then
    echo "temporal-namespace: the frontend did not answer over TLS after $max tries" >&2
    t operator cluster health
    exit 1
  fi
  sleep 2
done

if t operator namespace describe --namespace "$JOINERY_NAMESPACE" >/dev/null 2>&1; then
  echo "temporal-namespace: $JOINERY_NAMESPACE exists"
else
  t operator namespace create --namespace "$JOINERY_NAMESPACE" --retention "$JOINERY_NAMESPACE_RETENTION"
fi

# A new namespace reaches every service's namespace cache a few seconds
# after it is created; until then it is "not found".
tries=0
until have=$(t operator search-attribute list --namespace "$JOINERY_NAMESPACE" 2>&1); do
  tries=$((tries + 1))
  if [ "$tries" -gt 30 ]; then
    printf '%s\n' "$have" >&2
    exit 1
  fi
  sleep 2
done
for sa in $JOINERY_SEARCH_ATTRIBUTES; do
  name=${sa%%=*}
  type=${sa#*=}
  if printf '%s\n' "$have" | grep -qw -- "$name"; then
    echo "temporal-namespace: search attribute $name exists"
    continue
  fi
  t operator search-attribute create --namespace "$JOINERY_NAMESPACE" --name "$name" --type "$type"
done

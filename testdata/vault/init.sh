#!/bin/sh
# One-shot Vault bootstrap for docker-compose (see docker-compose.yml).
# Initialises with a single key share (trial only), unseals, enables KV v2 and
# AppRole, loads the password policy and the worker's policy, and writes a
# worker token to /init/worker-token. Idempotent across restarts.
set -eu
until vault status -format=json >/dev/null 2>&1 || [ $? -eq 2 ]; do sleep 1; done
if [ ! -f /init/init.json ]; then
  vault operator init -key-shares=1 -key-threshold=1 -format=json > /init/init.json
fi
key=$(sed -n 's/.*"unseal_keys_b64": *\[ *"\([^"]*\)".*/\1/p' /init/init.json | head -1)
[ -n "$key" ] || key=$(tr -d '\n ' < /init/init.json | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
vault operator unseal "$key" >/dev/null
VAULT_TOKEN=$(tr -d '\n ' < /init/init.json | sed -n 's/.*"root_token":"\([^"]*\)".*/\1/p')
export VAULT_TOKEN
vault secrets list | grep -q '^secret/' || vault secrets enable -path=secret kv-v2
vault auth list | grep -q '^approle/' || vault auth enable approle
vault write sys/policies/password/joinery-initial policy=@/policies/password-policy.hcl
vault policy write joinery-worker /policies/joinery-worker.hcl
vault token create -policy=joinery-worker -period=24h -field=token > /init/worker-token

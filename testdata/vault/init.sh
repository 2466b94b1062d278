#!/bin/sh
# One-shot Vault bootstrap for docker-compose (see docker-compose.yml).
# Initialises with a single key share (trial only), unseals, enables KV v2 and
# AppRole, loads the password policy, the workload policies and the worker's
# policy, and gives the worker its AppRole identity. Idempotent across
# restarts.
#
# Two volumes, two audiences:
#   /init    init.json (unseal key, root token): this job only. The worker
#            never mounts it.
#   /worker  role-id and secret-id of AppRole joinery-worker, readable by the
#            worker's user (distroless nonroot, uid 65532), mounted read-only.
#
# The policy files are rendered from the joiner policy by Go
# (internal/stack.RenderVaultFiles; its test keeps these in step with
# testdata/policy/default.yaml): this script only substitutes the AppRole
# accessor the ACL templates refer to. After changing the joiner policy's
# workload grants, regenerate them and re-run this job.
set -eu
until vault status -format=json >/dev/null 2>&1 || [ $? -eq 2 ]; do sleep 1; done
umask 077
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

# Workload policies: ACL templates over the AppRole mount's entity aliases.
accessor=$(vault read -field=accessor sys/auth/approle)
for f in /policies/workload-policies/*.hcl; do
  sed "s/@APPROLE_ACCESSOR@/$accessor/g" "$f" | vault policy write "$(basename "$f" .hcl)" -
done
vault kv put secret/joinery/workload-policies catalogue=@/policies/workload-catalogue.json >/dev/null

# The worker: its policy, its role, its credentials. The RoleID is fixed
# (an identifier, not a secret) so the compose file can name it; the
# SecretID is the secret and is kept while Vault still knows it.
vault policy write joinery-worker /policies/joinery-worker.hcl
vault write auth/approle/role/joinery-worker token_policies=joinery-worker \
  token_ttl=1h token_max_ttl=4h secret_id_ttl=0 secret_id_num_uses=0 >/dev/null
vault write auth/approle/role/joinery-worker/role-id role_id=joinery-worker >/dev/null
if [ ! -s /worker/secret-id ] || ! vault write auth/approle/role/joinery-worker/secret-id/lookup \
    secret_id="$(cat /worker/secret-id)" >/dev/null 2>&1; then
  vault write -f -field=secret_id auth/approle/role/joinery-worker/secret-id > /worker/secret-id.new
  mv /worker/secret-id.new /worker/secret-id
fi
printf 'joinery-worker\n' > /worker/role-id
chown 65532:65532 /worker/secret-id /worker/role-id
chmod 0400 /worker/secret-id /worker/role-id
# Tokens handed out before this bootstrap existed carry more than the worker
# needs; nothing here creates one any more.
rm -f /init/worker-token

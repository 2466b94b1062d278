# Least privilege for Joinery's worker: its own KV subtree, the password
# policy, response wrapping, and (for non-human joiners) AppRole roles and
# policies under its own prefix.
path "secret/data/joinery/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/joinery/*" { capabilities = ["read", "update", "patch", "delete", "list"] }
path "secret/destroy/joinery/*"  { capabilities = ["update"] }
path "sys/policies/password/joinery-initial/generate" { capabilities = ["read"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
path "sys/wrapping/lookup"        { capabilities = ["update"] }
path "auth/approle/role/joinery-nhi-*"   { capabilities = ["create", "read", "update", "delete"] }
path "auth/approle/role/joinery-nhi-*/*" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/joinery-nhi-*"    { capabilities = ["create", "read", "update", "delete"] }

# Joinery workload policy for kind "service-account", installed by the Vault bootstrap from the joiner policy.
# Each variable path is a fixed prefix plus a value from the workload's SecretID metadata;
# a slot without a value resolves to nothing and grants nothing.
path "secret/data/workloads/{{identity.entity.aliases.@APPROLE_ACCESSOR@.metadata.joinery_slot_0}}" {
  capabilities = ["read"]
}
path "secret/metadata/workloads/{{identity.entity.aliases.@APPROLE_ACCESSOR@.metadata.joinery_slot_1}}" {
  capabilities = ["list"]
}

# Vault server configuration for docker-compose.yml (mounted at
# /vault/config). File storage in the vaultdata volume; TLS with the
# certificate the bootstrap's certs job issued for the name "vault".
storage "file" {
  path = "/vault/file"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/certs/vault/cert.pem"
  tls_key_file  = "/certs/vault/key.pem"
  tls_min_version = "tls12"
}

api_addr = "https://vault:8200"
ui       = false
# File storage on a container filesystem: no swap to protect against
# that mlock would cover, and no IPC_LOCK capability needed.
disable_mlock = true

package stack

import "path/filepath"

// Env returns the JOINERY_* settings (KEY=value) that point the worker and
// starter at this stack. Secrets are referenced by file where possible.
func Env(ep Endpoints) []string {
	return []string{
		"JOINERY_TEMPORAL_ADDRESS=" + ep.TemporalAddress,
		"JOINERY_TEMPORAL_NAMESPACE=" + ep.TemporalNamespace,
		"JOINERY_TEMPORAL_UI_URL=" + ep.TemporalUIURL,
		"JOINERY_LDAP_URL=" + ep.LDAPURL,
		"JOINERY_LDAP_BIND_DN=" + ep.LDAPBindDN,
		"JOINERY_LDAP_BIND_PASSWORD=" + ep.LDAPBindPassword,
		"JOINERY_LDAP_BASE_DN=" + ep.LDAPBaseDN,
		"JOINERY_VAULT_ADDR=" + ep.VaultAddr,
		"JOINERY_VAULT_TOKEN_FILE=" + filepath.Join(ep.StateDir, "vault", "root-token"),
		"JOINERY_HRIS_URL=" + ep.HRISURL,
		"JOINERY_HRIS_COMPANY=" + ep.HRISCompany,
		"JOINERY_HRIS_API_KEY=" + ep.HRISAPIKey,
		"JOINERY_HRIS_WEBHOOK_SECRET=" + ep.HRISWebhookSecret,
		"JOINERY_INBOX_DIR=" + filepath.Join(ep.StateDir, "mail"),
		"JOINERY_CODEC_KEYS_FILE=" + codecKeysFile(ep.StateDir),
		"JOINERY_SMTP_ADDR=" + ep.SMTPAddr,
	}
}

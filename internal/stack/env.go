package stack

import (
	"os"
	"path/filepath"
	"strings"
)

// Env returns the JOINERY_* settings (KEY=value) that point the worker and
// starter at this stack. Secrets are referenced by file where possible.
//
// The worker authenticates to Vault with the AppRole identity the bootstrap
// created (RoleID, SecretID file), never with the root token, so that what
// runs against the dev stack is what runs in production. Development mode
// is on: it is what lets the dev stack's well-known secrets (bind password,
// API key, webhook secret, intake token) be used as defaults.
func Env(ep Endpoints) []string {
	roleID, _ := os.ReadFile(VaultWorkerRoleIDFile(ep.StateDir))
	return []string{
		"JOINERY_DEV_MODE=true",
		"JOINERY_TEMPORAL_ADDRESS=" + ep.TemporalAddress,
		"JOINERY_TEMPORAL_NAMESPACE=" + ep.TemporalNamespace,
		"JOINERY_TEMPORAL_UI_URL=" + ep.TemporalUIURL,
		"JOINERY_LDAP_URL=" + ep.LDAPURL,
		// The worker binds as its scoped service account, never as the
		// rootdn (ep.LDAPBindDN), which is for bootstrap and test assertions.
		"JOINERY_LDAP_BIND_DN=" + LDAPServiceDN,
		"JOINERY_LDAP_BIND_PASSWORD=" + LDAPServicePassword,
		// The approval inbox binds as its own read-only account (slapdinbox.go).
		"JOINERY_INBOX_LDAP_BIND_DN=" + LDAPInboxDN,
		"JOINERY_INBOX_LDAP_BIND_PASSWORD=" + LDAPInboxPassword,
		"JOINERY_LDAP_BASE_DN=" + ep.LDAPBaseDN,
		"JOINERY_VAULT_ADDR=" + ep.VaultAddr,
		"JOINERY_VAULT_ROLE_ID=" + strings.TrimSpace(string(roleID)),
		"JOINERY_VAULT_SECRET_ID_FILE=" + VaultWorkerSecretIDFile(ep.StateDir),
		"JOINERY_HRIS_URL=" + ep.HRISURL,
		"JOINERY_HRIS_COMPANY=" + ep.HRISCompany,
		"JOINERY_HRIS_API_KEY=" + ep.HRISAPIKey,
		"JOINERY_HRIS_WEBHOOK_SECRET=" + ep.HRISWebhookSecret,
		"JOINERY_INBOX_DIR=" + filepath.Join(ep.StateDir, "mail"),
		"JOINERY_CODEC_KEYS_FILE=" + codecKeysFile(ep.StateDir),
		"JOINERY_SMTP_ADDR=" + ep.SMTPAddr,
		"JOINERY_DECISION_KEY_FILE=" + DecisionKeyFile(ep.StateDir),
		"JOINERY_DECISION_PUBLIC_KEYS=" + DecisionPublicKeysFile(ep.StateDir),
		"JOINERY_INBOX_ADDR=" + ep.InboxAddr,
		"JOINERY_INBOX_URL=" + ep.InboxURL,
	}
}

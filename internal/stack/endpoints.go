package stack

// Endpoints says where each server of a running dev stack answers and how to
// authenticate to it. Every value is for the loopback dev stack only.
type Endpoints struct {
	// TemporalAddress is the frontend gRPC host:port, e.g. 127.0.0.1:7233.
	TemporalAddress string
	// TemporalNamespace is the namespace joiners run in.
	TemporalNamespace string
	// TemporalUIURL is the Web UI base URL, e.g. http://127.0.0.1:8233.
	TemporalUIURL string

	// VaultAddr is Vault's API address, e.g. http://127.0.0.1:8200.
	VaultAddr string
	// VaultToken is the dev stack's root token (never used outside loopback).
	VaultToken string

	// LDAPURL is slapd's URL, e.g. ldap://127.0.0.1:3389.
	LDAPURL string
	// LDAPBaseDN is the suffix, dc=joinery,dc=test.
	LDAPBaseDN string
	// LDAPBindDN and LDAPBindPassword are the rootdn credentials, for the
	// stack's bootstrap and for tests that assert what the directory holds.
	// The worker binds as the scoped service account LDAPServiceDN /
	// LDAPServicePassword, which is what Env exports.
	LDAPBindDN       string
	LDAPBindPassword string

	// HRISURL is the reference HRIS base URL, e.g. http://127.0.0.1:8090.
	HRISURL string
	// HRISCompany is the BambooHR company domain segment of API paths.
	HRISCompany string
	// HRISAPIKey is the API key (HTTP basic user, password "x").
	HRISAPIKey string
	// HRISWebhookSecret signs webhook deliveries (HMAC-SHA256).
	HRISWebhookSecret string
	// HRISAdminToken authorises the reference HRIS's test-only admin API.
	HRISAdminToken string

	// SMTPAddr is Mailpit's SMTP host:port, e.g. 127.0.0.1:1025 (plain
	// SMTP, no AUTH needed).
	SMTPAddr string
	// MailpitAPIURL is Mailpit's HTTP API base URL, e.g.
	// http://127.0.0.1:8025 (GET /api/v1/messages reads what was sent).
	MailpitAPIURL string

	// InboxAddr and InboxURL are where Joinery's own approval inbox
	// (`starter serve`) listens and is reached; not a stack server.
	InboxAddr string
	InboxURL  string

	// BinDir holds the stack's binaries (temporal, vault, refhris).
	BinDir string
	// StateDir holds databases, PID files and logs.
	StateDir string
}

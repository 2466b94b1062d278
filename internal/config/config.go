// Package config reads Joinery's configuration from environment variables.
//
// Every variable is declared once in Vars with its default and meaning; the
// README's table and the docker-compose check are tested against that list,
// so documentation and deployment cannot drift from the code.
package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the whole of Joinery's runtime configuration.
type Config struct {
	// DevMode lets secrets fall back to the dev stack's well-known values
	// (JOINERY_DEV_MODE). Off, every secret must be supplied.
	DevMode bool

	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string
	TemporalUIURL     string

	LDAPURL                string
	LDAPBindDN             string
	LDAPBindPassword       string
	LDAPBaseDN             string
	LDAPStartTLS           bool
	LDAPCAFile             string
	LDAPInsecureSkipVerify bool
	LDAPProfile            string
	LDAPTimeout            time.Duration

	VaultAddr           string
	VaultToken          string
	VaultTokenFile      string
	VaultRoleID         string
	VaultSecretID       string
	VaultSecretIDFile   string
	VaultKVMount        string
	VaultPasswordPolicy string

	HRISURL           string
	HRISCompany       string
	HRISAPIKey        string
	HRISWebhookSecret string

	PolicyFile string
	InboxDir   string

	IntakeAddr  string
	IntakeToken string
	LogLevel    string

	// The approval inbox and the decisions it signs.
	InboxAddr          string
	InboxURL           string
	InboxSessionIdle   time.Duration
	InboxSessionMax    time.Duration
	DecisionKeyFile    string
	DecisionPublicKeys string
	DecisionMaxAge     time.Duration
	// DecisionTransitKey, when set, makes the inbox sign with a Vault
	// transit key instead of DecisionKeyFile; DecisionVaultTokenFile holds
	// the inbox's own Vault token (never the worker's).
	DecisionTransitKey     string
	DecisionVaultTokenFile string
	// InboxLDAPBindDN and InboxLDAPBindPassword are the inbox's own
	// read-only directory identity, never the worker's (LDAPBindDN): the
	// inbox faces browsers, and only finds and signs people in.
	InboxLDAPBindDN       string
	InboxLDAPBindPassword string

	// E-mail notifications.
	Notifier     string
	SMTPAddr     string
	SMTPFrom     string
	SMTPUsername string
	SMTPPassword string
	SMTPStartTLS bool
	SMTPCAFile   string
	MailDomain   string

	// Payload encryption (internal/codec) and its codec server.
	CodecKeysFile      string
	CodecKeysVaultPath string
	CodecAddr          string
	CodecToken         string
	// AuditLog is the audit export file (JOINERY_AUDIT_LOG).
	AuditLog string

	// Metrics listeners (internal/metrics): "off" turns one off.
	WorkerMetricsAddr string
	IntakeMetricsAddr string
	InboxMetricsAddr  string
	// MetricsInterval is how often the joiner-state gauges are re-read
	// from Temporal visibility.
	MetricsInterval time.Duration
	// WorkerStickyCacheSize is how many workflows the worker keeps in
	// memory between tasks (JOINERY_WORKER_STICKY_CACHE_SIZE).
	WorkerStickyCacheSize int
	// WorkerMode is what the worker binary runs: "joiner" (the joiners,
	// the reconciler) or "sweeper" (the wrapping-token sweep, with its own
	// Vault identity; activities/sweep.go).
	WorkerMode string
	// SweeperTaskQueue is the sweeper's queue ("off": none deployed, the
	// reconciler skips the sweep); SweeperMinAge is how old an unrecorded
	// wrapping token must be before the sweeper revokes it.
	SweeperTaskQueue string
	SweeperMinAge    time.Duration
	// PseudonymKey keys the HMAC that turns usernames into the values of
	// the JoinerManager, JoinerDeciders and JoinerDecidedBy search
	// attributes (internal/pseudonym), which the server holds in clear.
	PseudonymKey string

	// Temporal client authentication (run.ClientOptions): TLS with the
	// server's CA, an optional client certificate for mTLS, and an optional
	// API key sent as a bearer credential.
	TemporalTLSCAFile     string
	TemporalTLSCertFile   string
	TemporalTLSKeyFile    string
	TemporalTLSServerName string
	TemporalAPIKey        string
}

// Var documents one environment variable.
type Var struct {
	Name    string
	Default string
	// DevDefault replaces Default when JOINERY_DEV_MODE is on. Secrets have
	// only this: a well-known value is acceptable against the loopback dev
	// stack and nowhere else.
	DevDefault string
	Doc        string
	// Secret marks values that must never be printed.
	Secret bool
	set    func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p(c) = b
		return nil
	}
}

// positiveInt takes a whole number of at least 1.
func positiveInt(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a whole number of at least 1, got %q", v)
		}
		*p(c) = n
		return nil
	}
}

func duration(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 10s, got %q", v)
		}
		*p(c) = d
		return nil
	}
}

// listenAddrOrOff takes a host:port to listen on, or "off". The port must
// be a number (0 picks a free one), so a typo stops the process at start
// rather than leaving a listener silently off.
func listenAddrOrOff(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "off" {
			_, port, err := net.SplitHostPort(v)
			n, perr := strconv.Atoi(port)
			if err != nil || perr != nil || n < 0 || n > 65535 {
				return fmt.Errorf("want host:port or off, got %q", v)
			}
		}
		*p(c) = v
		return nil
	}
}

// DevModeVar turns development mode on. It is read before the others
// because it decides their defaults.
const DevModeVar = "JOINERY_DEV_MODE"

// Vars lists every variable Joinery reads, in documentation order. Defaults
// point at the loopback dev stack (`make stack`); secrets default only in
// development mode.
func Vars() []Var {
	return []Var{
		{Name: DevModeVar, Default: "false", Doc: "Development mode: secrets default to the dev stack's well-known values (`devstack env` turns it on). Off, each binary refuses to start without the secrets it needs", set: boolean(func(c *Config) *bool { return &c.DevMode })},
		{Name: "JOINERY_TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", Doc: "Temporal frontend host:port", set: str(func(c *Config) *string { return &c.TemporalAddress })},
		{Name: "JOINERY_TEMPORAL_NAMESPACE", Default: "default", Doc: "Temporal namespace joiners run in", set: str(func(c *Config) *string { return &c.TemporalNamespace })},
		{Name: "JOINERY_TASK_QUEUE", Default: "joinery-joiners", Doc: "Task queue the worker polls and the starter targets", set: str(func(c *Config) *string { return &c.TaskQueue })},
		{Name: "JOINERY_TEMPORAL_UI_URL", Default: "http://127.0.0.1:8233", Doc: "Temporal Web UI base URL, for links printed to operators", set: str(func(c *Config) *string { return &c.TemporalUIURL })},

		{Name: "JOINERY_LDAP_URL", Default: "ldap://127.0.0.1:3389", Doc: "Directory URL (ldap:// or ldaps://)", set: str(func(c *Config) *string { return &c.LDAPURL })},
		{Name: "JOINERY_LDAP_BIND_DN", Default: "cn=joinery-worker,ou=system,dc=joinery,dc=test", Doc: "DN the worker binds as: Joinery's scoped service account, never the directory's admin", set: str(func(c *Config) *string { return &c.LDAPBindDN })},
		{Name: "JOINERY_LDAP_BIND_PASSWORD", DevDefault: "dev-joinery-worker", Doc: "Password for the bind DN (required by the worker)", Secret: true, set: str(func(c *Config) *string { return &c.LDAPBindPassword })},
		{Name: "JOINERY_LDAP_BASE_DN", Default: "dc=joinery,dc=test", Doc: "Directory suffix; people, groups and service accounts are OUs below it", set: str(func(c *Config) *string { return &c.LDAPBaseDN })},
		{Name: "JOINERY_LDAP_STARTTLS", Default: "false", Doc: "Upgrade ldap:// connections with StartTLS", set: boolean(func(c *Config) *bool { return &c.LDAPStartTLS })},
		{Name: "JOINERY_LDAP_CA_FILE", Default: "", Doc: "PEM CA bundle for ldaps:// and StartTLS", set: str(func(c *Config) *string { return &c.LDAPCAFile })},
		{Name: "JOINERY_LDAP_INSECURE_SKIP_VERIFY", Default: "false", Doc: "Skip TLS verification (tests only)", set: boolean(func(c *Config) *bool { return &c.LDAPInsecureSkipVerify })},
		{Name: "JOINERY_LDAP_PROFILE", Default: "openldap", Doc: "Attribute profile: openldap, openldap-posix or ad", set: str(func(c *Config) *string { return &c.LDAPProfile })},
		{Name: "JOINERY_LDAP_TIMEOUT", Default: "10s", Doc: "Timeout for each directory call", set: duration(func(c *Config) *time.Duration { return &c.LDAPTimeout })},

		{Name: "JOINERY_VAULT_ADDR", Default: "http://127.0.0.1:8200", Doc: "Vault API address", set: str(func(c *Config) *string { return &c.VaultAddr })},
		{Name: "JOINERY_VAULT_TOKEN", Default: "", Doc: "Vault token (dev); prefer AppRole in production", Secret: true, set: str(func(c *Config) *string { return &c.VaultToken })},
		{Name: "JOINERY_VAULT_TOKEN_FILE", Default: "", Doc: "File holding the Vault token when JOINERY_VAULT_TOKEN and AppRole are unset (no default, not even in development mode: the dev stack's worker logs in with AppRole, its root token is for the bootstrap only); re-read after a Vault 403, so a rotated token is picked up without a restart", set: str(func(c *Config) *string { return &c.VaultTokenFile })},
		{Name: "JOINERY_VAULT_ROLE_ID", Default: "", Doc: "AppRole RoleID; when set the worker logs in with AppRole (`devstack env` sets the dev stack's joinery-worker role)", set: str(func(c *Config) *string { return &c.VaultRoleID })},
		{Name: "JOINERY_VAULT_SECRET_ID", Default: "", Doc: "AppRole SecretID", Secret: true, set: str(func(c *Config) *string { return &c.VaultSecretID })},
		{Name: "JOINERY_VAULT_SECRET_ID_FILE", Default: "", Doc: "File holding the AppRole SecretID (preferred over the variable)", set: str(func(c *Config) *string { return &c.VaultSecretIDFile })},
		{Name: "JOINERY_VAULT_KV_MOUNT", Default: "secret", Doc: "KV v2 mount for joiner credentials", set: str(func(c *Config) *string { return &c.VaultKVMount })},
		{Name: "JOINERY_VAULT_PASSWORD_POLICY", Default: "joinery-initial", Doc: "Vault password policy that generates initial credentials", set: str(func(c *Config) *string { return &c.VaultPasswordPolicy })},

		{Name: "JOINERY_HRIS_URL", Default: "http://127.0.0.1:8090", Doc: "BambooHR-compatible API base URL (the reference HRIS in dev)", set: str(func(c *Config) *string { return &c.HRISURL })},
		{Name: "JOINERY_HRIS_COMPANY", Default: "joinery", Doc: "BambooHR company domain in API paths", set: str(func(c *Config) *string { return &c.HRISCompany })},
		{Name: "JOINERY_HRIS_API_KEY", DevDefault: "dev-hris-key", Doc: "HRIS API key (required by the worker and `starter serve`)", Secret: true, set: str(func(c *Config) *string { return &c.HRISAPIKey })},
		{Name: "JOINERY_HRIS_WEBHOOK_SECRET", DevDefault: "dev-webhook-secret", Doc: "HMAC key that signs HRIS webhooks (required by `starter serve`)", Secret: true, set: str(func(c *Config) *string { return &c.HRISWebhookSecret })},

		{Name: "JOINERY_POLICY_FILE", Default: "testdata/policy/default.yaml", Doc: "Joiner policy (YAML with CEL conditions)", set: str(func(c *Config) *string { return &c.PolicyFile })},
		{Name: "JOINERY_INBOX_DIR", Default: ".state/mail", Doc: "Dev delivery channel: wrapped credential tokens land in handover/<user>/<joiner>.token (0600), notifications in inbox/<user>.jsonl", set: str(func(c *Config) *string { return &c.InboxDir })},
		{Name: "JOINERY_INTAKE_ADDR", Default: "127.0.0.1:8091", Doc: "Listen address of `starter serve` (HR webhooks and API)", set: str(func(c *Config) *string { return &c.IntakeAddr })},
		{Name: "JOINERY_INTAKE_TOKEN", DevDefault: "dev-intake-token", Doc: "Bearer token for the intake API (required by `starter serve`)", Secret: true, set: str(func(c *Config) *string { return &c.IntakeToken })},
		{Name: "JOINERY_LOG_LEVEL", Default: "info", Doc: "debug, info, warn or error", set: str(func(c *Config) *string { return &c.LogLevel })},

		{Name: "JOINERY_INBOX_ADDR", Default: "127.0.0.1:8092", Doc: "Listen address of the approval inbox (served by `starter serve` and `starter inbox`; `starter serve --inbox-addr=` runs the intake alone)", set: str(func(c *Config) *string { return &c.InboxAddr })},
		{Name: "JOINERY_INBOX_URL", Default: "http://127.0.0.1:8092", Doc: "Base URL of the approval inbox as people reach it: links in e-mails, and the CLI's approve/reject", set: str(func(c *Config) *string { return &c.InboxURL })},
		{Name: "JOINERY_INBOX_SESSION_IDLE", Default: "30m", Doc: "An inbox session ends after this long without a request", set: duration(func(c *Config) *time.Duration { return &c.InboxSessionIdle })},
		{Name: "JOINERY_INBOX_SESSION_MAX", Default: "8h", Doc: "An inbox session ends this long after sign-in, however active", set: duration(func(c *Config) *time.Duration { return &c.InboxSessionMax })},
		{Name: "JOINERY_DECISION_KEY_FILE", Default: ".state/keys/decision-ed25519.pem", Doc: "The inbox's Ed25519 signing key (PKCS#8 PEM); only the inbox reads it (the dev stack generates it)", set: str(func(c *Config) *string { return &c.DecisionKeyFile })},
		{Name: "JOINERY_DECISION_PUBLIC_KEYS", Default: ".state/keys/decision-public.keys", Doc: "Public keys the worker accepts decisions from: one `<key-id> <base64 Ed25519 key>` per line; keep the old line while rotating", set: str(func(c *Config) *string { return &c.DecisionPublicKeys })},
		{Name: "JOINERY_DECISION_TRANSIT_KEY", Default: "", Doc: "`<mount>/<key>` of an ed25519 Vault transit key the inbox signs with instead of JOINERY_DECISION_KEY_FILE (the private key then never leaves Vault); add its public key to the worker's JOINERY_DECISION_PUBLIC_KEYS (`starter serve` logs the line)", set: str(func(c *Config) *string { return &c.DecisionTransitKey })},
		{Name: "JOINERY_DECISION_VAULT_TOKEN_FILE", Default: "", Doc: "File with the inbox's own Vault token for JOINERY_DECISION_TRANSIT_KEY: a policy with update on `<mount>/sign/<key>` and read on `<mount>/keys/<key>`, never the worker's identity", set: str(func(c *Config) *string { return &c.DecisionVaultTokenFile })},
		{Name: "JOINERY_INBOX_LDAP_BIND_DN", Default: "cn=joinery-inbox,ou=system,dc=joinery,dc=test", Doc: "DN the approval inbox binds as to find people who sign in: its own read-only account (people's sign-in attributes under ou=people, no write anywhere), never the worker's JOINERY_LDAP_BIND_DN; the inbox uses the other JOINERY_LDAP_* settings (URL, base DN, TLS, profile, timeout)", set: str(func(c *Config) *string { return &c.InboxLDAPBindDN })},
		{Name: "JOINERY_INBOX_LDAP_BIND_PASSWORD", DevDefault: "dev-joinery-inbox", Doc: "Password of JOINERY_INBOX_LDAP_BIND_DN; required by `starter serve` (unless the inbox is off) and `starter inbox`. Development mode defaults it to dev-joinery-inbox", Secret: true, set: str(func(c *Config) *string { return &c.InboxLDAPBindPassword })},
		{Name: "JOINERY_DECISION_MAX_AGE", Default: "15m", Doc: "A signed decision older than this when it reaches the joiner is refused as stale", set: duration(func(c *Config) *time.Duration { return &c.DecisionMaxAge })},

		{Name: "JOINERY_NOTIFIER", Default: "smtp", Doc: "How people are notified: smtp (e-mail) or file (JOINERY_INBOX_DIR, unit tests)", set: str(func(c *Config) *string { return &c.Notifier })},
		{Name: "JOINERY_SMTP_ADDR", Default: "127.0.0.1:1025", Doc: "SMTP server host:port (the dev stack's Mailpit)", set: str(func(c *Config) *string { return &c.SMTPAddr })},
		{Name: "JOINERY_SMTP_FROM", Default: "joinery@joinery.test", Doc: "Sender address of notifications", set: str(func(c *Config) *string { return &c.SMTPFrom })},
		{Name: "JOINERY_SMTP_USERNAME", Default: "", Doc: "SMTP AUTH user (empty: no AUTH)", set: str(func(c *Config) *string { return &c.SMTPUsername })},
		{Name: "JOINERY_SMTP_PASSWORD", Default: "", Doc: "SMTP AUTH password", Secret: true, set: str(func(c *Config) *string { return &c.SMTPPassword })},
		{Name: "JOINERY_SMTP_STARTTLS", Default: "false", Doc: "Require STARTTLS before AUTH and DATA", set: boolean(func(c *Config) *bool { return &c.SMTPStartTLS })},
		{Name: "JOINERY_SMTP_CA_FILE", Default: "", Doc: "PEM CA bundle that verifies the SMTP server's certificate", set: str(func(c *Config) *string { return &c.SMTPCAFile })},
		{Name: "JOINERY_MAIL_DOMAIN", Default: "joinery.test", Doc: "Domain of people's addresses when the directory has no mail attribute", set: str(func(c *Config) *string { return &c.MailDomain })},

		{Name: "JOINERY_CODEC_KEYS_FILE", Default: "", Doc: "Payload encryption keys: one `<key-id> <base64 32 bytes>` per line, newest (encrypting) first, mode 0600; when set every Temporal client and worker seals payloads and failure messages (the dev stack generates .state/keys/codec.keys)", set: str(func(c *Config) *string { return &c.CodecKeysFile })},
		{Name: "JOINERY_CODEC_KEYS_VAULT_PATH", Default: "", Doc: "Instead of the file: a KV v2 secret `<mount>/<path>` whose field `keys` holds the same lines, read at start with the process's Vault identity (token or AppRole)", set: str(func(c *Config) *string { return &c.CodecKeysVaultPath })},
		{Name: "JOINERY_CODEC_ADDR", Default: "127.0.0.1:8094", Doc: "Listen address of `starter codec-server`, the codec endpoint of the Web UI and `temporal --codec-endpoint`", set: str(func(c *Config) *string { return &c.CodecAddr })},
		{Name: "JOINERY_CODEC_TOKEN", DevDefault: "dev-codec-token", Doc: "Bearer token operators present to the codec server (`--codec-auth \"Bearer ...\"`, or the browser sign-in); required by `starter codec-server`. Development mode defaults it to dev-codec-token, which is served on a loopback address only", Secret: true, set: str(func(c *Config) *string { return &c.CodecToken })},
		{Name: "JOINERY_AUDIT_LOG", Default: ".state/audit/joiners.jsonl", Doc: "Append-only, hash-chained JSON-lines file the worker exports each joiner's audit record to, so it outlives Temporal's retention (`starter audit --verify FILE` checks it)", set: str(func(c *Config) *string { return &c.AuditLog })},
		{Name: "JOINERY_PSEUDONYM_KEY", DevDefault: "dev-pseudonym-key-for-the-loopback-stack-only", Doc: "Key (at least 32 bytes) of the HMAC that replaces usernames in the JoinerManager, JoinerDeciders and JoinerDecidedBy search attributes, which Temporal stores and shows in clear; required by the worker, the inbox and `starter list --manager`, the same value in each. Development mode defaults it to a well-known value", Secret: true, set: str(func(c *Config) *string { return &c.PseudonymKey })},

		{Name: "JOINERY_WORKER_METRICS_ADDR", Default: "127.0.0.1:9464", Doc: "Listen address of the worker's Prometheus `/metrics` (Temporal SDK metrics, joiner-state gauges, step latency); `off` turns it off. Serve it only where Prometheus, not people, can reach it", set: listenAddrOrOff(func(c *Config) *string { return &c.WorkerMetricsAddr })},
		{Name: "JOINERY_INTAKE_METRICS_ADDR", Default: "127.0.0.1:9465", Doc: "Listen address of the intake's `/metrics` (requests by outcome, the blast-radius hold), apart from the intake's own port; `off` turns it off", set: listenAddrOrOff(func(c *Config) *string { return &c.IntakeMetricsAddr })},
		{Name: "JOINERY_INBOX_METRICS_ADDR", Default: "127.0.0.1:9466", Doc: "Listen address of the approval inbox's `/metrics` (sign-ins, decisions, security events), apart from the inbox's own port; `off` turns it off", set: listenAddrOrOff(func(c *Config) *string { return &c.InboxMetricsAddr })},
		{Name: "JOINERY_METRICS_INTERVAL", Default: "30s", Doc: "How often the worker re-reads the joiner-state gauges from Temporal visibility (and the intake the hold); scrapes answer from the last reading", set: duration(func(c *Config) *time.Duration { return &c.MetricsInterval })},
		{Name: "JOINERY_WORKER_MODE", Default: "joiner", Doc: "What the worker binary runs: `joiner` (joiners and the reconciler, on JOINERY_TASK_QUEUE) or `sweeper` (only the reconciler's wrapping-token sweep, on JOINERY_SWEEPER_TASK_QUEUE, as a separate process with its own Vault AppRole joinery-sweeper, the only identity that may list token accessors; it needs no LDAP, HRIS or SMTP settings)", set: str(func(c *Config) *string { return &c.WorkerMode })},
		{Name: "JOINERY_SWEEPER_TASK_QUEUE", Default: "joinery-sweeper", Doc: "Task queue of the wrapping-token sweeper; the reconciler sends the sweep there (`off`: no sweeper is deployed and the reconciler skips the sweep; a sweeper that is deployed but down makes the run report it after 5 minutes)", set: str(func(c *Config) *string { return &c.SweeperTaskQueue })},
		{Name: "JOINERY_SWEEPER_MIN_AGE", Default: "10m", Doc: "How old a wrapping token for a Joinery path that no handover ledger records must be before the sweeper revokes it (at least 3m: a credential attempt records its token within its 1-minute timeout)", set: duration(func(c *Config) *time.Duration { return &c.SweeperMinAge })},
		{Name: "JOINERY_WORKER_STICKY_CACHE_SIZE", Default: "1000", Doc: "How many workflows the worker keeps cached in memory between workflow tasks (the SDK's sticky cache, whose own default is 10,000; a joiner waiting for approval takes about 120 kB of it). A joiner evicted from the cache is rebuilt by replaying its history on its next event (a signal, a timer): slower, never wrong. Set once per process, when the worker starts", set: positiveInt(func(c *Config) *int { return &c.WorkerStickyCacheSize })},

		{Name: "JOINERY_TEMPORAL_TLS_CA_FILE", Default: "", Doc: "PEM CA bundle that verifies the Temporal frontend's certificate; setting it turns TLS on for every Temporal client (worker, starter, intake, inbox)", set: str(func(c *Config) *string { return &c.TemporalTLSCAFile })},
		{Name: "JOINERY_TEMPORAL_TLS_CERT_FILE", Default: "", Doc: "PEM client certificate presented to Temporal (mTLS); needs JOINERY_TEMPORAL_TLS_KEY_FILE, and turns TLS on (verified against the system roots without JOINERY_TEMPORAL_TLS_CA_FILE)", set: str(func(c *Config) *string { return &c.TemporalTLSCertFile })},
		{Name: "JOINERY_TEMPORAL_TLS_KEY_FILE", Default: "", Doc: "PEM private key of JOINERY_TEMPORAL_TLS_CERT_FILE; both or neither", set: str(func(c *Config) *string { return &c.TemporalTLSKeyFile })},
		{Name: "JOINERY_TEMPORAL_TLS_SERVER_NAME", Default: "", Doc: "Name the Temporal frontend's certificate is checked against, when it is not the host of JOINERY_TEMPORAL_ADDRESS (needs TLS)", set: str(func(c *Config) *string { return &c.TemporalTLSServerName })},
		{Name: "JOINERY_TEMPORAL_API_KEY", Default: "", Doc: "API key sent to Temporal as `Authorization: Bearer` (Temporal Cloud API keys, or a self-hosted authorizer's JWT); refused without TLS unless JOINERY_TEMPORAL_ADDRESS is a loopback address", Secret: true, set: str(func(c *Config) *string { return &c.TemporalAPIKey })},
	}
}

// Load reads the environment through getenv (os.Getenv when nil). Every bad
// value is reported, naming its variable.
func Load(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var c Config
	var problems []string
	dev := false
	if v := getenv(DevModeVar); v != "" {
		// A malformed value is reported by the loop below; until then it
		// counts as off, the safe side.
		dev, _ = strconv.ParseBool(v)
	}
	for _, v := range Vars() {
		val := getenv(v.Name)
		if val == "" {
			val = v.Default
			if dev && v.DevDefault != "" {
				val = v.DevDefault
			}
		}
		if val == "" {
			continue
		}
		if err := v.set(&c, val); err != nil {
			problems = append(problems, v.Name+": "+err.Error())
		}
	}
	switch c.LDAPProfile {
	case "openldap", "openldap-posix", "ad":
	default:
		problems = append(problems, fmt.Sprintf("JOINERY_LDAP_PROFILE: want openldap, openldap-posix or ad, got %q", c.LDAPProfile))
	}
	switch c.Notifier {
	case "smtp", "file":
	default:
		problems = append(problems, fmt.Sprintf("JOINERY_NOTIFIER: want smtp or file, got %q", c.Notifier))
	}
	switch c.WorkerMode {
	case "joiner", "sweeper":
	default:
		problems = append(problems, fmt.Sprintf("JOINERY_WORKER_MODE: want joiner or sweeper, got %q", c.WorkerMode))
	}
	if c.SweeperMinAge < 3*time.Minute {
		problems = append(problems, fmt.Sprintf("JOINERY_SWEEPER_MIN_AGE: want at least 3m (a credential attempt may still record its token until its 1-minute timeout, plus clock skew), got %s", c.SweeperMinAge))
	}
	if c.SweeperTaskQueue == c.TaskQueue {
		problems = append(problems, "JOINERY_SWEEPER_TASK_QUEUE: must differ from JOINERY_TASK_QUEUE (the sweeper's identity must not serve the joiners' tasks)")
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// VaultCredentials resolves the Vault token or AppRole SecretID from files
// when the variables themselves are empty.
func (c Config) VaultCredentials() (token, secretID string, err error) {
	token, secretID = c.VaultToken, c.VaultSecretID
	if c.VaultRoleID != "" {
		if secretID == "" && c.VaultSecretIDFile != "" {
			b, err := os.ReadFile(c.VaultSecretIDFile)
			if err != nil {
				return "", "", fmt.Errorf("JOINERY_VAULT_SECRET_ID_FILE: %w", err)
			}
			secretID = strings.TrimSpace(string(b))
		}
		if secretID == "" {
			return "", "", fmt.Errorf("JOINERY_VAULT_ROLE_ID is set but no SecretID was given")
		}
		return "", secretID, nil
	}
	if token == "" && c.VaultTokenFile != "" {
		b, err := os.ReadFile(c.VaultTokenFile)
		if err != nil {
			return "", "", fmt.Errorf("no Vault token: JOINERY_VAULT_TOKEN is empty and JOINERY_VAULT_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return "", "", fmt.Errorf("no Vault credentials: set JOINERY_VAULT_ROLE_ID with JOINERY_VAULT_SECRET_ID_FILE (AppRole), or JOINERY_VAULT_TOKEN / JOINERY_VAULT_TOKEN_FILE")
	}
	return token, "", nil
}

// Binary names a Joinery program whose start-up requirements Require checks.
type Binary string

// The binaries with secrets they cannot run without.
const (
	// Worker needs the LDAP bind password, the HRIS API key and Vault
	// credentials.
	Worker Binary = "worker"
	// Sweeper is the worker binary in sweeper mode: it needs only its
	// Vault credentials.
	Sweeper Binary = "worker (JOINERY_WORKER_MODE=sweeper)"
	// Serve (`starter serve`) needs the intake token, the webhook secret and
	// the HRIS API key (the intake reads the HR record before it starts a
	// joiner).
	Serve Binary = "starter serve"
	// Inbox is the approval inbox (`starter inbox`, and `starter serve`
	// unless its inbox is off): it needs its own directory password, and
	// must not be configured with the worker's account.
	Inbox Binary = "the approval inbox"
)

// Require reports every secret b cannot start without, naming each
// variable, so that a deployment missing one fails at start rather than at
// the first joiner (or, worse, with an intake nobody can authenticate to).
// Outside development mode nothing defaults, so this is what catches it.
func (c Config) Require(b Binary) error {
	var missing []string
	need := func(name, val string) {
		if val == "" {
			missing = append(missing, name)
		}
	}
	switch b {
	case Worker:
		need("JOINERY_LDAP_BIND_PASSWORD", c.LDAPBindPassword)
		need("JOINERY_HRIS_API_KEY", c.HRISAPIKey)
		need("JOINERY_PSEUDONYM_KEY", c.PseudonymKey)
		if _, _, err := c.VaultCredentials(); err != nil {
			missing = append(missing, err.Error())
		}
	case Sweeper:
		if _, _, err := c.VaultCredentials(); err != nil {
			missing = append(missing, err.Error())
		}
		if c.SweeperTaskQueue == "off" {
			missing = append(missing, "JOINERY_SWEEPER_TASK_QUEUE (it is off)")
		}
	case Serve:
		need("JOINERY_INTAKE_TOKEN", c.IntakeToken)
		need("JOINERY_HRIS_WEBHOOK_SECRET", c.HRISWebhookSecret)
		need("JOINERY_HRIS_API_KEY", c.HRISAPIKey)
	case Inbox:
		need("JOINERY_INBOX_LDAP_BIND_DN", c.InboxLDAPBindDN)
		need("JOINERY_INBOX_LDAP_BIND_PASSWORD", c.InboxLDAPBindPassword)
		// The worker's account could create entries, set passwords and
		// grant groups: the process people's browsers reach never holds it.
		if c.InboxLDAPBindDN != "" && strings.EqualFold(strings.ReplaceAll(c.InboxLDAPBindDN, " ", ""), strings.ReplaceAll(c.LDAPBindDN, " ", "")) {
			return fmt.Errorf("%s cannot start: JOINERY_INBOX_LDAP_BIND_DN is the worker's account (JOINERY_LDAP_BIND_DN); give the inbox its own read-only account", b)
		}
	default:
		return fmt.Errorf("configuration: unknown binary %q", b)
	}
	if len(missing) == 0 {
		return nil
	}
	hint := ""
	if !c.DevMode {
		hint = " (secrets have no defaults unless " + DevModeVar + "=true, which is for the loopback dev stack only)"
	}
	return fmt.Errorf("%s cannot start, missing: %s%s", b, strings.Join(missing, "; "), hint)
}

// LoadFor is Load followed by Require(b): one call for a binary's main.
func LoadFor(b Binary, getenv func(string) string) (Config, error) {
	c, err := Load(getenv)
	if err != nil {
		return c, err
	}
	if err := c.Require(b); err != nil {
		return Config{}, err
	}
	return c, nil
}

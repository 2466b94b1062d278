// Package stack owns Joinery's loopback dev stack: the Temporal dev server
// (with its Web UI), a Vault server, OpenLDAP slapd, the reference HRIS and
// Mailpit (SMTP with an HTTP API to read what was sent).
//
// One package starts it for `make run`, `make stack`, the integration tests
// and benchmarks, so that they all agree on ports, credentials and seed data.
// Up reuses servers that already answer, starts the rest, waits until each
// answers and leaves them running as detached processes with PID files in the
// state directory; Down stops exactly those PIDs.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/internal/decision"
)

// Config locates the stack's binaries and state and fixes its ports.
// Defaults come from DefaultConfig; every field has an environment variable.
type Config struct {
	// RepoDir is the checkout root (testdata, go build of refhris).
	RepoDir string
	// BinDir holds temporal, vault and refhris (JOINERY_BIN_DIR, default REPO/bin).
	BinDir string
	// StateDir holds databases, PID files and logs (JOINERY_STATE_DIR, default REPO/.state).
	StateDir string

	// TemporalPort is the frontend gRPC port (JOINERY_STACK_TEMPORAL_PORT, 7233).
	TemporalPort int
	// TemporalUIPort is the Web UI port (JOINERY_STACK_TEMPORAL_UI_PORT, 8233).
	TemporalUIPort int
	// VaultPort is Vault's API port (JOINERY_STACK_VAULT_PORT, 8200).
	VaultPort int
	// LDAPPort is slapd's port (JOINERY_STACK_LDAP_PORT, 3389).
	LDAPPort int
	// HRISPort is the reference HRIS port (JOINERY_STACK_HRIS_PORT, 8090).
	HRISPort int
	// MailpitSMTPPort is Mailpit's SMTP port (JOINERY_STACK_MAILPIT_SMTP_PORT, 1025).
	MailpitSMTPPort int
	// MailpitHTTPPort is Mailpit's HTTP API port (JOINERY_STACK_MAILPIT_HTTP_PORT, 8025).
	MailpitHTTPPort int
	// InboxPort is where `starter serve` runs the approval inbox for this
	// stack (JOINERY_STACK_INBOX_PORT, 8092).
	InboxPort int

	// LDAPTLS, when set, makes slapd also serve StartTLS on LDAPPort and
	// ldaps:// on LDAPSPort with these files (used by TLS tests on a
	// private slapd; the dev stack itself runs plain LDAP on loopback).
	LDAPTLS   *TLSFiles
	LDAPSPort int

	// Mailpit, when set, makes Mailpit demand TLS and AUTH (private
	// instances for mail tests; the dev stack's accepts plain SMTP).
	Mailpit *MailpitOptions

	// StartTimeout bounds the wait for each server to answer.
	StartTimeout time.Duration
	// Logger receives progress lines; nil means silent.
	Logger *slog.Logger
}

// Dev-stack constants. They are credentials for loopback servers that hold
// only test data; production configuration comes from the environment.
const (
	LDAPBaseDN        = "dc=joinery,dc=test"
	LDAPBindDN        = "cn=admin,dc=joinery,dc=test"
	LDAPBindPassword  = "dev-ldap-admin"
	HRISCompany       = "joinery"
	HRISAPIKey        = "dev-hris-key"
	HRISWebhookSecret = "dev-webhook-secret"
	HRISAdminToken    = "dev-hris-admin"
	TemporalNamespace = "default"
)

// SearchAttributes are the typed search attributes Joinery upserts (name and
// type); the dev server registers them so the Web UI can filter on them.
var SearchAttributes = [][2]string{
	{"JoinerStage", "Keyword"}, {"JoinerKind", "Keyword"}, {"JoinerManager", "Keyword"},
	{"JoinerDepartment", "Keyword"}, {"HRISID", "Keyword"}, {"JoinerExpiry", "Datetime"},
	// Who may decide now, and who has decided: the approval inbox's
	// "waiting for me" and "my past decisions" (directory usernames only).
	{"JoinerDeciders", "KeywordList"}, {"JoinerDecidedBy", "KeywordList"},
}

// DefaultConfig returns the configuration for a checkout rooted at repoDir,
// overridden by the environment.
func DefaultConfig(repoDir string) Config {
	c := Config{
		RepoDir:         repoDir,
		BinDir:          envOr("JOINERY_BIN_DIR", filepath.Join(repoDir, "bin")),
		StateDir:        envOr("JOINERY_STATE_DIR", filepath.Join(repoDir, ".state")),
		TemporalPort:    envInt("JOINERY_STACK_TEMPORAL_PORT", 7233),
		TemporalUIPort:  envInt("JOINERY_STACK_TEMPORAL_UI_PORT", 8233),
		VaultPort:       envInt("JOINERY_STACK_VAULT_PORT", 8200),
		LDAPPort:        envInt("JOINERY_STACK_LDAP_PORT", 3389),
		HRISPort:        envInt("JOINERY_STACK_HRIS_PORT", 8090),
		MailpitSMTPPort: envInt("JOINERY_STACK_MAILPIT_SMTP_PORT", 1025),
		MailpitHTTPPort: envInt("JOINERY_STACK_MAILPIT_HTTP_PORT", 8025),
		InboxPort:       envInt("JOINERY_STACK_INBOX_PORT", 8092),
		StartTimeout:    90 * time.Second,
	}
	return c
}

// FindRepoDir walks up from the working directory to the directory holding
// go.mod, so tests in any package find the same stack.
func FindRepoDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("stack: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Endpoints returns where the stack configured by c answers. It does not
// check that anything is running.
func (c Config) Endpoints() Endpoints {
	token, _ := os.ReadFile(c.vaultTokenFile())
	smtpAddr, mailpitAPI := c.mailpitAddrs()
	return Endpoints{
		TemporalAddress:   fmt.Sprintf("127.0.0.1:%d", c.TemporalPort),
		TemporalNamespace: TemporalNamespace,
		TemporalUIURL:     fmt.Sprintf("http://127.0.0.1:%d", c.TemporalUIPort),
		VaultAddr:         fmt.Sprintf("http://127.0.0.1:%d", c.VaultPort),
		VaultToken:        string(token),
		LDAPURL:           fmt.Sprintf("ldap://127.0.0.1:%d", c.LDAPPort),
		LDAPBaseDN:        LDAPBaseDN,
		LDAPBindDN:        LDAPBindDN,
		LDAPBindPassword:  LDAPBindPassword,
		HRISURL:           fmt.Sprintf("http://127.0.0.1:%d", c.HRISPort),
		HRISCompany:       HRISCompany,
		HRISAPIKey:        HRISAPIKey,
		HRISWebhookSecret: HRISWebhookSecret,
		HRISAdminToken:    HRISAdminToken,
		SMTPAddr:          smtpAddr,
		MailpitAPIURL:     mailpitAPI,
		InboxAddr:         fmt.Sprintf("127.0.0.1:%d", c.InboxPort),
		InboxURL:          fmt.Sprintf("http://127.0.0.1:%d", c.InboxPort),
		BinDir:            c.BinDir,
		StateDir:          c.StateDir,
	}
}

// TLSFiles are PEM files for a TLS-serving slapd.
type TLSFiles struct {
	CA, Cert, Key string
}

// PrivateSlapd starts a slapd of its own under c.StateDir on c.LDAPPort
// (and c.LDAPSPort with c.LDAPTLS), seeded like the stack's, for tests that
// must not touch the shared one. stop ends exactly that process.
func PrivateSlapd(ctx context.Context, c Config) (stop func(), err error) {
	s := c.slapdServer()
	if err := c.ensure(ctx, s); err != nil {
		return nil, fmt.Errorf("private slapd: %w (log: %s)", err, c.logFile(s.name))
	}
	return func() { _ = c.stop(context.Background(), s.name) }, nil
}

// server is one managed process of the stack.
type server struct {
	name string
	// prepare writes config and seeds state before the first start.
	prepare func(ctx context.Context) error
	// command returns the binary and arguments to run.
	command func() (string, []string, []string, error)
	// ready reports nil once the server answers.
	ready func(ctx context.Context) error
	// bootstrap runs after ready (idempotent), e.g. Vault unseal and mounts.
	bootstrap func(ctx context.Context) error
	// stale, when set, reports that a running instance must be restarted
	// (the reference HRIS after its code changed).
	stale func(ctx context.Context) (bool, error)
}

func (c Config) servers() []server {
	return []server{c.slapdServer(), c.vaultServer(), c.temporalServer(), c.hrisServer(), c.mailpitServer()}
}

// Up starts every server that does not already answer, waits for all of them
// and returns their endpoints. Concurrent callers (parallel test packages)
// serialise on a lock file, so the stack is started once.
func Up(ctx context.Context, c Config) (Endpoints, error) {
	if err := os.MkdirAll(c.logDir(), 0o755); err != nil {
		return Endpoints{}, err
	}
	unlock, err := lockFile(ctx, filepath.Join(c.StateDir, "stack.lock"))
	if err != nil {
		return Endpoints{}, err
	}
	defer unlock()
	// The payload encryption key is made once and never replaced: a new
	// one would make every history sealed with the old one unreadable.
	if created, err := codec.EnsureKeyFile(codecKeysFile(c.StateDir)); err != nil {
		return Endpoints{}, fmt.Errorf("stack: codec key: %w", err)
	} else if created {
		c.logf("codec: generated %s", codecKeysFile(c.StateDir))
	}
	// The approval inbox's signing key and the public key the worker
	// trusts: made once, kept (a new key would not verify decisions already
	// signed; rotation adds a line to the public file instead).
	if err := decision.EnsureKeyFiles(DecisionKeyFile(c.StateDir), DecisionPublicKeysFile(c.StateDir)); err != nil {
		return Endpoints{}, fmt.Errorf("stack: decision key: %w", err)
	}
	for _, s := range c.servers() {
		if err := c.ensure(ctx, s); err != nil {
			return Endpoints{}, fmt.Errorf("stack: %s: %w (log: %s)", s.name, err, c.logFile(s.name))
		}
	}
	return c.Endpoints(), nil
}

// DecisionKeyFile is the dev stack's approval inbox signing key.
func DecisionKeyFile(stateDir string) string {
	return filepath.Join(stateDir, "keys", "decision-ed25519.pem")
}

// DecisionPublicKeysFile lists the public keys the dev stack's worker
// accepts decisions from.
func DecisionPublicKeysFile(stateDir string) string {
	return filepath.Join(stateDir, "keys", "decision-public.keys")
}

// Status reports, per server, nil when it answers or the reason it does not.
func Status(ctx context.Context, c Config) map[string]error {
	out := map[string]error{}
	for _, s := range c.servers() {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		out[s.name] = s.ready(cctx)
		cancel()
	}
	return out
}

// Down stops the servers this stack started (by the PIDs it recorded), the
// reverse of the start order. Servers that are not running are skipped.
func Down(ctx context.Context, c Config) error {
	var errs []error
	srv := c.servers()
	for i := len(srv) - 1; i >= 0; i-- {
		if err := c.stop(ctx, srv[i].name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv[i].name, err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) ensure(ctx context.Context, s server) error {
	if s.stale != nil {
		old, err := s.stale(ctx)
		if err != nil {
			return err
		}
		if _, running := c.runningPID(s.name); old && running {
			c.logf("%s: binary changed since it started; restarting", s.name)
			if err := c.stop(ctx, s.name); err != nil {
				return err
			}
		}
	}
	if err := quick(ctx, s.ready); err == nil {
		c.logf("%s: already up", s.name)
		if s.bootstrap != nil {
			return s.bootstrap(ctx)
		}
		return nil
	}
	var exited <-chan struct{}
	if pid, ok := c.runningPID(s.name); ok {
		// Our process is alive but not answering yet (still starting, or
		// another test package started it a moment ago): wait for it.
		c.logf("%s: pid %d running, waiting", s.name, pid)
	} else {
		if s.prepare != nil {
			if err := s.prepare(ctx); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
		}
		bin, args, env, err := s.command()
		if err != nil {
			return err
		}
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("binary %s missing (run `make tools`): %w", bin, err)
		}
		pid, ch, err := c.spawn(s.name, bin, args, env)
		if err != nil {
			return err
		}
		exited = ch
		c.logf("%s: started pid %d", s.name, pid)
	}
	if err := c.waitReady(ctx, s, exited); err != nil {
		return err
	}
	if s.bootstrap != nil {
		return s.bootstrap(ctx)
	}
	return nil
}

// waitReady polls until s answers. exited, when we spawned the process,
// closes if it dies; otherwise (another caller started it) its recorded PID
// is checked. The PID check alone would race a fresh fork, whose cmdline is
// still the parent's until exec.
func (c Config) waitReady(ctx context.Context, s server, exited <-chan struct{}) error {
	deadline := time.Now().Add(c.StartTimeout)
	var last error
	for time.Now().Before(deadline) {
		if last = quick(ctx, s.ready); last == nil {
			return nil
		}
		dead := false
		if exited != nil {
			select {
			case <-exited:
				dead = true
			default:
			}
		} else if _, ok := c.runningPID(s.name); !ok {
			dead = true
		}
		if dead {
			return fmt.Errorf("exited during start: %v; last lines of its log:\n%s", last, tail(c.logFile(s.name), 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("did not answer within %s: %v; last lines of its log:\n%s", c.StartTimeout, last, tail(c.logFile(s.name), 15))
}

func quick(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return f(cctx)
}

func (c Config) logf(format string, args ...any) {
	if c.Logger != nil {
		c.Logger.Info(fmt.Sprintf(format, args...))
	}
}

func (c Config) logDir() string             { return filepath.Join(c.StateDir, "logs") }
func (c Config) logFile(name string) string { return filepath.Join(c.logDir(), name+".log") }
func (c Config) pidFile(name string) string { return filepath.Join(c.StateDir, "pids", name+".pid") }
func (c Config) dataDir(name string) string { return filepath.Join(c.StateDir, name) }
func (c Config) vaultTokenFile() string     { return filepath.Join(c.dataDir("vault"), "root-token") }
func (c Config) vaultInitFile() string      { return filepath.Join(c.dataDir("vault"), "init.json") }
func (c Config) bin(name string) string     { return filepath.Join(c.BinDir, name) }
func (c Config) testdata(rel string) string { return filepath.Join(c.RepoDir, "testdata", rel) }

// codecKeysFile is the dev stack's payload encryption key file (0600).
func codecKeysFile(stateDir string) string { return filepath.Join(stateDir, "keys", "codec.keys") }
func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if v := os.Getenv(k); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// lockFile takes an exclusive flock, waiting while another process holds it.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for stack lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

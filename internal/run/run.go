// Package run wires configuration into connectors, the Temporal client and
// the worker. The worker and starter binaries, the demo and the integration
// tests all build Joinery through it, so they cannot wire it differently.
package run

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/mail"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/metrics"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/workflows"
)

// NewLogger returns a JSON logger at the named level.
func NewLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Dial connects to Temporal. With JOINERY_CODEC_KEYS_FILE (or
// JOINERY_CODEC_KEYS_VAULT_PATH) set, the client
// (and every worker built on it) seals payloads and failure messages before
// they reach the server and opens them on the way back (see internal/codec),
// so joiners' personal data never sits in clear in a history. Everything
// that talks to Temporal dials here, so nothing can write a history in clear
// by being wired differently.
//
// How the client authenticates to Temporal (TLS, client certificate, API
// key) is ClientOptions'.
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	return DialWithMetrics(ctx, cfg, logger, nil)
}

// DialWithMetrics is Dial with the Temporal SDK's metrics going to mh
// (internal/metrics Registry.TemporalHandler); nil means none.
func DialWithMetrics(ctx context.Context, cfg config.Config, logger *slog.Logger, mh client.MetricsHandler) (client.Client, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts, err := ClientOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	opts.MetricsHandler = mh
	cd, err := codec.FromConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cd != nil {
		opt, err := codec.DialOption(cd)
		if err != nil {
			return nil, err
		}
		opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions, opt)
		logger.Debug("payload encryption on", "activeKey", cd.ActiveKeyID(), "keys", len(cd.KeyIDs()))
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// ClientOptions are the Temporal client options Dial starts from: address,
// namespace, logger and how the client authenticates. Payload encryption is
// added by Dial, not here.
//
// JOINERY_TEMPORAL_TLS_CA_FILE turns TLS on and is the only root the
// frontend's certificate is checked against; a client certificate
// (JOINERY_TEMPORAL_TLS_CERT_FILE and _KEY_FILE) is presented for mTLS and
// turns TLS on as well, since a certificate only means something over TLS.
// JOINERY_TEMPORAL_API_KEY is sent as a bearer credential on every call, and
// is refused without TLS unless the address is loopback: over plaintext it
// would be readable by anyone on the path, and it is as good as the
// process's identity. Every problem names its variable, so a deployment that is wired
// wrong fails at start, not at the first joiner.
func ClientOptions(cfg config.Config, logger *slog.Logger) (client.Options, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger),
	}
	tc, err := temporalTLS(cfg)
	if err != nil {
		return client.Options{}, err
	}
	opts.ConnectionOptions.TLS = tc
	if cfg.TemporalAPIKey != "" {
		if tc == nil {
			if !isLoopback(cfg.TemporalAddress) {
				return client.Options{}, fmt.Errorf("JOINERY_TEMPORAL_API_KEY is set but TLS is not (JOINERY_TEMPORAL_TLS_CA_FILE): the key would cross the network to %s in clear; only a loopback address may go without TLS", cfg.TemporalAddress)
			}
			// The SDK turns TLS on by itself when an API key is given;
			// a loopback server without TLS (the dev stack, a local
			// proxy) would then refuse every handshake.
			opts.ConnectionOptions.TLSDisabled = true
			logger.Warn("Temporal API key sent without TLS to a loopback address", "temporal", cfg.TemporalAddress)
		}
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	return opts, nil
}

// temporalTLS is the TLS configuration for the Temporal frontend, or nil
// when none of the TLS variables is set.
func temporalTLS(cfg config.Config) (*tls.Config, error) {
	hasCert, hasKey := cfg.TemporalTLSCertFile != "", cfg.TemporalTLSKeyFile != ""
	if hasCert != hasKey {
		return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_CERT_FILE and JOINERY_TEMPORAL_TLS_KEY_FILE: set both (mTLS) or neither")
	}
	if cfg.TemporalTLSCAFile == "" && !hasCert {
		if cfg.TemporalTLSServerName != "" {
			return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_SERVER_NAME is set but TLS is not: set JOINERY_TEMPORAL_TLS_CA_FILE")
		}
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TemporalTLSServerName}
	if cfg.TemporalTLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TemporalTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_CA_FILE: %s holds no PEM certificate", cfg.TemporalTLSCAFile)
		}
		tc.RootCAs = pool
	}
	if hasCert {
		certPEM, err := os.ReadFile(cfg.TemporalTLSCertFile)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_CERT_FILE: %w", err)
		}
		keyPEM, err := os.ReadFile(cfg.TemporalTLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_KEY_FILE: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_TEMPORAL_TLS_CERT_FILE / JOINERY_TEMPORAL_TLS_KEY_FILE (%s, %s): %w", cfg.TemporalTLSCertFile, cfg.TemporalTLSKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// isLoopback reports whether a host:port names this machine: a loopback IP
// or localhost (reserved for loopback by RFC 6761). Any other name does not
// count even if it resolves to loopback today: where it resolves is up to
// DNS, not to the configuration.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Connectors are Joinery's clients of the external systems.
type Connectors struct {
	Directory *directory.Client
	Secrets   *secrets.Client
	HRIS      *hris.Client
}

// NewConnectors builds the connectors from configuration; the worker and the
// demo's checks share it so they cannot wire a system differently.
func NewConnectors(ctx context.Context, cfg config.Config) (Connectors, error) {
	dir, err := directory.New(DirectoryConfig(cfg))
	if err != nil {
		return Connectors{}, fmt.Errorf("directory: %w", err)
	}
	sec, err := NewSecrets(ctx, cfg)
	if err != nil {
		return Connectors{}, err
	}
	hr, err := hris.New(hris.Config{BaseURL: cfg.HRISURL, Company: cfg.HRISCompany, APIKey: cfg.HRISAPIKey})
	if err != nil {
		return Connectors{}, fmt.Errorf("hris: %w", err)
	}
	return Connectors{Directory: dir, Secrets: sec, HRIS: hr}, nil
}

// NewSecrets builds the Vault client with the process's own identity
// (AppRole, or a token), the worker's and the sweeper's alike.
func NewSecrets(ctx context.Context, cfg config.Config) (*secrets.Client, error) {
	token, secretID, err := cfg.VaultCredentials()
	if err != nil {
		return nil, err
	}
	// A token that came from JOINERY_VAULT_TOKEN_FILE is re-read from it
	// after a 403, so a rotation under the running process is picked up.
	tokenFile := ""
	if cfg.VaultRoleID == "" && cfg.VaultToken == "" {
		tokenFile = cfg.VaultTokenFile
	}
	sec, err := secrets.New(ctx, secrets.Config{
		Addr: cfg.VaultAddr, Token: token, TokenFile: tokenFile, RoleID: cfg.VaultRoleID, SecretID: secretID,
		KVMount: cfg.VaultKVMount, PasswordPolicy: cfg.VaultPasswordPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return sec, nil
}

// Activities builds the activities: policy, connectors and delivery channel.
func Activities(ctx context.Context, cfg config.Config, logger *slog.Logger) (*activities.Activities, error) {
	pol, err := policy.Load(cfg.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", cfg.PolicyFile, err)
	}
	cn, err := NewConnectors(ctx, cfg)
	if err != nil {
		return nil, err
	}
	inbox := activities.FileInbox{Dir: cfg.InboxDir}
	// People are told by e-mail (JOINERY_NOTIFIER=smtp) or, in unit-style
	// runs, through the file inbox. Credential handover stays on the file
	// inbox either way: a wrapped token does not belong in e-mail.
	var notifier activities.Notifier = inbox
	if cfg.Notifier == "smtp" {
		sender, err := mail.New(mail.Config{
			Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
			StartTLS: cfg.SMTPStartTLS, CAFile: cfg.SMTPCAFile,
		})
		if err != nil {
			return nil, fmt.Errorf("notifier: %w", err)
		}
		book := activities.DirectoryAddressBook{Domain: cfg.MailDomain}
		// The directory's mail attribute is used once the directory client
		// can look it up by username; until then, username@JOINERY_MAIL_DOMAIN.
		if l, ok := any(cn.Directory).(activities.MailLookup); ok {
			book.Lookup = l
		}
		notifier = activities.MailNotifier{Sender: sender, Addresses: book, InboxURL: cfg.InboxURL}
	}
	// Without the inbox's public key no decision could ever be verified:
	// refuse to start rather than run joiners that can only time out.
	keys, err := decision.LoadPublicKeys(cfg.DecisionPublicKeys)
	if err != nil {
		return nil, fmt.Errorf("JOINERY_DECISION_PUBLIC_KEYS: %w", err)
	}
	// Joiners publish pseudonyms, not usernames, in their search
	// attributes; without the key they could not be found in the inbox.
	pseud, err := pseudonym.New(cfg.PseudonymKey)
	if err != nil {
		return nil, err
	}
	logger.Info("policy loaded", "file", cfg.PolicyFile, "version", pol.Version)
	return &activities.Activities{
		Directory: cn.Directory, Secrets: cn.Secrets, Workloads: cn.Secrets, HRIS: cn.HRIS, Policy: pol,
		Handover: inbox, Notifier: notifier, Logger: logger,
		People: cn.Directory, DecisionKeys: keys, DecisionMaxAge: cfg.DecisionMaxAge, InboxURL: cfg.InboxURL,
		AuditLog: cfg.AuditLog, Pseudonyms: pseud,
	}, nil
}

// DirectoryConfig maps configuration onto the LDAP connector's.
func DirectoryConfig(cfg config.Config) directory.Config {
	dc := directory.Config{
		URL: cfg.LDAPURL, BindDN: cfg.LDAPBindDN, BindPassword: cfg.LDAPBindPassword, BaseDN: cfg.LDAPBaseDN,
		StartTLS: cfg.LDAPStartTLS, CACertFile: cfg.LDAPCAFile, InsecureSkipVerify: cfg.LDAPInsecureSkipVerify,
		Timeout: cfg.LDAPTimeout,
	}
	switch cfg.LDAPProfile {
	case "openldap-posix":
		dc.Profile = directory.OpenLDAPProfile{Posix: true}
	case "ad":
		dc.Profile = directory.ADProfile{}
	default:
		dc.Profile = directory.OpenLDAPProfile{}
	}
	return dc
}

// Register puts the joiner workflow and activities on a worker.
func Register(w worker.Registry, acts *activities.Activities, elig *activities.Eligibility) {
	w.RegisterWorkflow(workflows.Joiner)
	w.RegisterActivity(acts)
	w.RegisterActivity(elig)
}

// Worker runs the worker until ctx ends.
func Worker(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	acts, err := Activities(ctx, cfg, logger)
	if err != nil {
		return err
	}
	wm, err := NewWorkerMetrics(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = wm.Registry.Close(context.Background()) }()
	c, err := DialWithMetrics(ctx, cfg, logger, wm.Temporal)
	if err != nil {
		return err
	}
	defer c.Close()
	// Continued joiners check their previous run with Temporal
	// (activities/continued.go).
	acts.Runs = c
	elig, err := NewEligibility(cfg, acts.HRIS)
	if err != nil {
		return err
	}
	// Bound the workflows held in memory (issue 12, P4): every joiner
	// waiting for approval stays cached, about 120 kB each, up to the
	// SDK's default of 10,000. Past the bound the least recently used is
	// evicted and replays its history on its next task, which costs CPU
	// and latency, not correctness. The cache is process-global in the
	// SDK, so it is set here, once, before the worker starts (a later
	// call, once the first worker has built the cache, has no effect).
	if cfg.WorkerStickyCacheSize > 0 {
		worker.SetStickyWorkflowCacheSize(cfg.WorkerStickyCacheSize)
	}
	w := worker.New(c, cfg.TaskQueue, worker.Options{Interceptors: []interceptor.WorkerInterceptor{wm.Steps}})
	Register(w, acts, elig)
	// The reconciler (issue 10) runs on the joiners' worker: it revokes with
	// the same connectors and identities.
	rec := NewReconcile(acts, c, logger)
	rec.TaskQueue = cfg.TaskQueue // only Joiner runs on this queue count as Joinery's
	rec.SweeperQueue = SweeperQueue(cfg)
	rec.Metrics = wm.Reconciler
	RegisterReconciler(w, rec)
	if err := wm.Start(ctx, c, cfg, logger); err != nil {
		return err
	}
	logger.Info("worker polling", "taskQueue", cfg.TaskQueue, "temporal", cfg.TemporalAddress)
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

// WorkerMetrics are the worker's metrics: the Temporal SDK's (Temporal),
// step latency and joiner outcomes (Steps, a worker interceptor), the
// joiner-state gauges read from visibility, and the reconciler's findings
// (Reconciler: give it to the reconciler's activities).
type WorkerMetrics struct {
	Registry   *metrics.Registry
	Temporal   client.MetricsHandler
	Steps      *metrics.Steps
	Reconciler *metrics.Reconciler
}

// NewWorkerMetrics builds the worker's metrics; Start serves them.
func NewWorkerMetrics(cfg config.Config) (*WorkerMetrics, error) {
	reg := metrics.NewRegistry()
	th, err := reg.TemporalHandler()
	if err != nil {
		return nil, err
	}
	steps, err := metrics.NewSteps(reg.Registerer())
	if err != nil {
		return nil, err
	}
	rec, err := metrics.NewReconciler(reg.Registerer())
	if err != nil {
		return nil, err
	}
	return &WorkerMetrics{Registry: reg, Temporal: th, Steps: steps, Reconciler: rec}, nil
}

// Start registers the joiner-state collector for c and serves /metrics on
// JOINERY_WORKER_METRICS_ADDR until ctx ends ("off": no listener, and the
// collector does not run). A port that is taken is logged and the worker
// runs without its listener (metrics.ListenOrLog says why).
func (m *WorkerMetrics) Start(ctx context.Context, c client.Client, cfg config.Config, logger *slog.Logger) error {
	addr, on := metrics.Addr(cfg.WorkerMetricsAddr)
	if !on {
		logger.Info("worker metrics off (JOINERY_WORKER_METRICS_ADDR=off)")
		return nil
	}
	ln, ok := metrics.ListenOrLog(addr, "JOINERY_WORKER_METRICS_ADDR", logger)
	if !ok {
		return nil
	}
	js := &metrics.JoinerState{Client: c, Namespace: cfg.TemporalNamespace, TaskQueue: cfg.TaskQueue,
		Interval: cfg.MetricsInterval, Logger: logger}
	if err := m.Registry.Registerer().Register(js); err != nil {
		_ = ln.Close()
		return err
	}
	go js.Run(ctx)
	go func() {
		if err := m.Registry.Serve(ctx, ln, logger); err != nil {
			logger.Error("worker metrics stopped", "error", err.Error())
		}
	}()
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	vault "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/metrics"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/internal/run"
)

func init() {
	commands["serve"] = cmdServe
	commands["inbox"] = cmdInbox
}

const serveUsage = `usage: starter serve [--addr HOST:PORT] [--inbox-addr HOST:PORT]

Runs the HR intake server (default address JOINERY_INTAKE_ADDR):
  POST /hris/webhook   signed HRIS webhooks (JOINERY_HRIS_WEBHOOK_SECRET)
  POST /joiners        start one joiner      (Authorization: Bearer JOINERY_INTAKE_TOKEN)
  POST /joiners:bulk   CSV or NDJSON upload  (bearer)
  POST /scim/v2/Bulk   SCIM bulk request, Entra API-driven provisioning shape (bearer)
  GET  /healthz, /readyz
and beside it, unless JOINERY_INBOX_ADDR is empty, the approval inbox
(default address JOINERY_INBOX_ADDR, reached as JOINERY_INBOX_URL):
  GET  /               sign in with your directory account; joiners waiting for you
  GET  /joiners/ID     the plan; approve, reject or extend (signed with JOINERY_DECISION_KEY_FILE)
  GET  /decisions      your past decisions
  GET  /handover       initial credentials waiting for you (JOINERY_INBOX_DIR), unwrapped once
  GET  /api/v1/waiting, POST /api/v1/joiners/ID/decision   the CLI's API (HTTP Basic)
SIGINT or SIGTERM shuts both down gracefully.
`

const inboxUsage = `usage: starter inbox [--addr HOST:PORT]

Runs the approval inbox alone (default address JOINERY_INBOX_ADDR); see
"starter serve --help" for its pages. SIGINT or SIGTERM shuts it down.
`

// cmdServe runs the intake server, and the inbox beside it, until SIGINT or
// SIGTERM. Either failing stops both: a half-running front door would hide
// the failure from whoever watches the process.
func cmdServe(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage) }
	addr := fs.String("addr", cfg.IntakeAddr, "intake listen address")
	inboxAddr := fs.String("inbox-addr", cfg.InboxAddr, "inbox listen address (empty: no inbox)")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 0 {
		fmt.Fprint(stderr, serveUsage)
		return exitUsage
	}

	logger := run.NewLogger(cfg.LogLevel, stderr)
	c, err := run.Dial(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer c.Close()
	if cfg.IntakeToken == "" {
		logger.Warn("JOINERY_INTAKE_TOKEN is empty: /joiners, /joiners:bulk and /scim/v2/Bulk refuse every request")
	}
	if cfg.HRISWebhookSecret == "" {
		logger.Warn("JOINERY_HRIS_WEBHOOK_SECRET is empty: /hris/webhook refuses every delivery")
	}
	var ib *inbox.Server
	if *inboxAddr != "" {
		ibLog, err := metrics.ServeInbox(ctx, cfg.InboxMetricsAddr, logger)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		// Built before anything listens, so a missing key or bad URL stops
		// the start instead of leaving the intake running alone.
		if ib, err = newInbox(cfg, c, ibLog); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
	} else {
		logger.Info("JOINERY_INBOX_ADDR is empty: the approval inbox is off")
	}
	st := intake.NewTemporalStarter(c, cfg)
	inLog, err := metrics.ServeIntake(ctx, cfg.IntakeMetricsAddr, logger, intake.HoldFor(c, cfg), cfg.MetricsInterval)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	srv := &intake.Server{
		Starter:  st,
		Verifier: hris.NewVerifier([]byte(cfg.HRISWebhookSecret)),
		Token:    cfg.IntakeToken,
		Logger:   inLog,
		Ready:    st.Ready,
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	n := 1
	go func() { errc <- srv.ListenAndServe(ctx, *addr) }()
	if ib != nil {
		n++
		go func() { errc <- ib.ListenAndServe(ctx, *inboxAddr) }()
	}
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
		cancel() // the first to stop, for whatever reason, stops the other
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

// cmdInbox runs the approval inbox alone.
func cmdInbox(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, inboxUsage) }
	addr := fs.String("addr", cfg.InboxAddr, "listen address")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 0 || *addr == "" {
		fmt.Fprint(stderr, inboxUsage)
		return exitUsage
	}
	// A server runs until it is told to stop, not for the two minutes the
	// quick commands get: keep ending on SIGINT/SIGTERM, drop the deadline.
	ctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := run.NewLogger(cfg.LogLevel, stderr)
	c, err := run.Dial(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer c.Close()
	ibLog, err := metrics.ServeInbox(ctx, cfg.InboxMetricsAddr, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	ib, err := newInbox(cfg, c, ibLog)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if err := ib.ListenAndServe(ctx, *addr); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

// newInbox builds the approval inbox from configuration: the signing key
// (only the inbox reads it), the directory for sign-in, Vault for the
// credential handover.
//
// The directory client binds as the inbox's own read-only account
// (JOINERY_INBOX_LDAP_BIND_DN), not the worker's: the inbox faces browsers,
// and whoever takes it over must not be able to create entries, set
// passwords or change groups. Sign-in needs only to find the person and
// prove their password with a bind of their own.
func newInbox(cfg config.Config, c client.Client, logger *slog.Logger) (*inbox.Server, error) {
	if err := cfg.Require(config.Inbox); err != nil {
		return nil, err
	}
	signer, err := newSigner(cfg, logger)
	if err != nil {
		return nil, err
	}
	dir, err := directory.New(inboxDirectoryConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	// The same key as the worker's: it finds a person's joiners, whose
	// search attributes hold pseudonyms, not usernames.
	keyer, err := pseudonym.New(cfg.PseudonymKey)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	var wrapping inbox.Wrapping
	if cfg.VaultAddr != "" {
		wrapping = inbox.VaultWrapping{Addr: cfg.VaultAddr}
	}
	return inbox.New(inbox.Config{
		BaseURL: cfg.InboxURL, SessionIdle: cfg.InboxSessionIdle, SessionMax: cfg.InboxSessionMax, HandoverDir: cfg.InboxDir,
	}, inbox.Deps{Auth: dir, Signer: signer, Temporal: c, Wrapping: wrapping, Logger: logger, Pseudonyms: keyer})
}

// inboxDirectoryConfig is the worker's directory settings (URL, base DN,
// TLS, profile, timeout) with the inbox's own identity in place of the
// worker's.
func inboxDirectoryConfig(cfg config.Config) directory.Config {
	dc := run.DirectoryConfig(cfg)
	dc.BindDN, dc.BindPassword = cfg.InboxLDAPBindDN, cfg.InboxLDAPBindPassword
	return dc
}

// newSigner is the inbox's signer: the key file, or a Vault transit key
// used with the inbox's own Vault token (JOINERY_DECISION_TRANSIT_KEY).
func newSigner(cfg config.Config, logger *slog.Logger) (decision.Signer, error) {
	if cfg.DecisionTransitKey == "" {
		s, err := decision.LoadFileSigner(cfg.DecisionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("inbox: %w (JOINERY_DECISION_KEY_FILE)", err)
		}
		return s, nil
	}
	if cfg.DecisionVaultTokenFile == "" {
		return nil, errors.New("inbox: JOINERY_DECISION_TRANSIT_KEY needs JOINERY_DECISION_VAULT_TOKEN_FILE (the inbox's own Vault token)")
	}
	tok, err := os.ReadFile(cfg.DecisionVaultTokenFile)
	if err != nil {
		return nil, fmt.Errorf("inbox: JOINERY_DECISION_VAULT_TOKEN_FILE: %w", err)
	}
	vc, err := vault.NewClient(&vault.Config{Address: cfg.VaultAddr})
	if err != nil {
		return nil, fmt.Errorf("inbox: vault: %w", err)
	}
	vc.SetToken(strings.TrimSpace(string(tok)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := decision.NewTransitSigner(ctx, vc, cfg.DecisionTransitKey)
	if err != nil {
		return nil, fmt.Errorf("inbox: JOINERY_DECISION_TRANSIT_KEY: %w", err)
	}
	logger.Info("inbox signs with a Vault transit key; the worker's JOINERY_DECISION_PUBLIC_KEYS must hold this line",
		"key", cfg.DecisionTransitKey, "publicKeyLine", decision.FormatPublicKey(s.PublicKey()))
	return s, nil
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/run"
)

func init() { commands["serve"] = cmdServe }

const serveUsage = `usage: starter serve [--addr HOST:PORT]

Runs the HR intake server (default address JOINERY_INTAKE_ADDR):
  POST /hris/webhook   signed HRIS webhooks (JOINERY_HRIS_WEBHOOK_SECRET)
  POST /joiners        start one joiner      (Authorization: Bearer JOINERY_INTAKE_TOKEN)
  POST /joiners:bulk   CSV or NDJSON upload  (bearer)
  POST /scim/v2/Bulk   SCIM bulk request, Entra API-driven provisioning shape (bearer)
  GET  /healthz, /readyz
SIGINT or SIGTERM shuts it down gracefully.
`

// cmdServe runs the intake server until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage) }
	addr := fs.String("addr", cfg.IntakeAddr, "listen address")
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
	st := intake.NewTemporalStarter(c, cfg)
	srv := &intake.Server{
		Starter:  st,
		Verifier: hris.NewVerifier([]byte(cfg.HRISWebhookSecret)),
		Token:    cfg.IntakeToken,
		Logger:   logger,
		Ready:    st.Ready,
	}
	if err := srv.ListenAndServe(ctx, *addr); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

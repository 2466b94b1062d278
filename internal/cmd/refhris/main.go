// Command refhris runs Joinery's reference HRIS, a BambooHR-compatible REST
// server backed by SQLite (see package hrisserver), for the dev stack, the
// demo and the integration tests.
//
// Every flag has an environment variable; a flag given on the command line
// wins. Logs are JSON on stderr. SIGINT or SIGTERM stops it gracefully.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/joinery/joinery/internal/hrisserver"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "refhris:", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("refhris", flag.ContinueOnError)
	var cfg hrisserver.Config
	fs.StringVar(&cfg.Addr, "addr", env("REFHRIS_ADDR", "127.0.0.1:8090"), "listen address (REFHRIS_ADDR)")
	fs.StringVar(&cfg.DBPath, "db", env("REFHRIS_DB", "refhris.db"), "SQLite database file (REFHRIS_DB)")
	fs.StringVar(&cfg.Company, "company", env("REFHRIS_COMPANY", "joinery"), "company domain in API paths (REFHRIS_COMPANY)")
	fs.StringVar(&cfg.WebhookURL, "webhook-url", env("REFHRIS_WEBHOOK_URL", ""), "primary webhook target URL (REFHRIS_WEBHOOK_URL)")
	fs.StringVar(&cfg.SeedFile, "seed", env("REFHRIS_SEED", "testdata/hris/seed.json"), "seed file loaded into an empty database (REFHRIS_SEED)")
	level := fs.String("log-level", env("REFHRIS_LOG_LEVEL", "info"), "debug, info, warn or error (REFHRIS_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Secrets come from the environment only, so that they never show in a
	// process listing.
	cfg.APIKey = env("REFHRIS_API_KEY", "dev-hris-key")
	cfg.WebhookSecret = env("REFHRIS_WEBHOOK_SECRET", "dev-webhook-secret")
	cfg.AdminToken = env("REFHRIS_ADMIN_TOKEN", "dev-hris-admin")

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	srv, err := hrisserver.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.ListenAndServe(ctx)
}

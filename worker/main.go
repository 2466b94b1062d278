// Command worker runs Joinery's Temporal worker: it loads configuration and
// the joiner policy, builds the connectors and polls the joiner task queue.
// With JOINERY_WORKER_MODE=sweeper it runs the reconciler's wrapping-token
// sweeper instead, a separate process with its own Vault identity.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
)

func main() {
	cfg, err := config.Load(nil)
	if err == nil {
		b := config.Worker
		if cfg.WorkerMode == "sweeper" {
			b = config.Sweeper
		}
		err = cfg.Require(b)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	logger := run.NewLogger(cfg.LogLevel, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runFn := run.Worker
	if cfg.WorkerMode == "sweeper" {
		runFn = run.Sweeper
	}
	if err := runFn(ctx, cfg, logger); err != nil {
		logger.Error("worker stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

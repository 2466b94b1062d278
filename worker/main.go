// Command worker runs Joinery's Temporal worker: it loads configuration and
// the joiner policy, builds the connectors and polls the joiner task queue.
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
	cfg, err := config.LoadFor(config.Worker, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	logger := run.NewLogger(cfg.LogLevel, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run.Worker(ctx, cfg, logger); err != nil {
		logger.Error("worker stopped", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

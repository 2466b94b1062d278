package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
)

// The bare baseline: what a joiner would cost if it were nothing but its
// approval and its activities. It waits for one signal, like a joiner waits
// for its approval, then runs N no-op activities one after another with the
// same client (payload codec included) and no search attributes, queries
// or markers. The ratio joiner/bare in the table is what Joinery's own
// logic adds on top of Temporal.

const (
	bareWorkflowName = "BenchBare"
	bareSignal       = "approve"
	bareQueryReady   = "ready"
)

// BareInput sizes one bare workflow.
type BareInput struct {
	Activities int `json:"activities"`
}

// BareWorkflow waits for the approve signal and then runs in.Activities
// sequential no-op activities.
func BareWorkflow(ctx workflow.Context, in BareInput) (int, error) {
	if err := workflow.SetQueryHandler(ctx, bareQueryReady, func() (bool, error) { return true, nil }); err != nil {
		return 0, err
	}
	workflow.GetSignalChannel(ctx, bareSignal).Receive(ctx, nil)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	n := 0
	for i := 0; i < in.Activities; i++ {
		if err := workflow.ExecuteActivity(ctx, Noop, i).Get(ctx, &n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Noop is the baseline's activity: it does nothing and returns its input.
func Noop(_ context.Context, i int) (int, error) { return i + 1, nil }

// runBareWorker is `bench worker-bare`: a worker process of its own for the
// baseline, so that its RSS is read the same way as bin/worker's. Its
// address, namespace, codec and task queue come from the environment the
// bench gives it.
func runBareWorker() error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	logger := run.NewLogger("warn", os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := run.Dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	w := worker.New(c, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(BareWorkflow, workflow.RegisterOptions{Name: bareWorkflowName})
	w.RegisterActivity(Noop)
	if err := w.Start(); err != nil {
		return fmt.Errorf("bare worker: %w", err)
	}
	logger.Info("bare worker polling", slog.String("taskQueue", cfg.TaskQueue))
	<-ctx.Done()
	w.Stop()
	return nil
}

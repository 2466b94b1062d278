package run

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
)

// SweeperQueue is the sweeper's task queue as the joiner worker tells the
// reconciler ("" when JOINERY_SWEEPER_TASK_QUEUE is off).
func SweeperQueue(cfg config.Config) string {
	if cfg.SweeperTaskQueue == "off" {
		return ""
	}
	return cfg.SweeperTaskQueue
}

// RegisterSweeper puts the sweeper's activities on a worker; only the
// sweeper process does this (it alone has the Vault identity they need).
func RegisterSweeper(w worker.Registry, s *activities.Sweep) {
	w.RegisterActivity(s)
}

// Sweeper runs the worker binary in sweeper mode until ctx ends: only the
// reconciler's wrapping-token sweep (activities/sweep.go), on its own task
// queue, logged in to Vault with its own identity (AppRole
// joinery-sweeper, policy secrets.SweeperPolicyHCL). It opens no LDAP,
// HRIS or SMTP connection and serves no workflow.
func Sweeper(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	vc, err := NewSecrets(ctx, cfg)
	if err != nil {
		return err
	}
	c, err := Dial(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	s := &activities.Sweep{Vault: vc, Runs: c, JoinerQueue: cfg.TaskQueue, MinAge: cfg.SweeperMinAge, Logger: logger}
	// One sweep at a time, and at most one activity a second from the
	// queue: each listing walks every token in Vault, and anyone with
	// Temporal access can start Reconciler runs; the credential steps
	// competing for Vault have a one-minute timeout.
	w := worker.New(c, cfg.SweeperTaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: 1,
		TaskQueueActivitiesPerSecond:       1,
	})
	RegisterSweeper(w, s)
	logger.Info("sweeper polling", "taskQueue", cfg.SweeperTaskQueue, "joinerQueue", cfg.TaskQueue, "minAge", cfg.SweeperMinAge)
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

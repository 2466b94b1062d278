package run

import (
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/workflows"
)

// NewReconcile builds the reconciler's activities from the worker's own
// connectors (so it acts with the worker's least-privilege identities) and
// its Temporal client (to ask which joiners are live).
func NewReconcile(acts *activities.Activities, c client.Client, logger *slog.Logger) *activities.Reconcile {
	rec := &activities.Reconcile{Joiners: c, Logger: logger}
	if d, ok := acts.Directory.(*directory.Client); ok {
		rec.Directory = d
	}
	if s, ok := acts.Secrets.(*secrets.Client); ok {
		rec.Secrets = s
	}
	if h, ok := acts.HRIS.(*hris.Client); ok {
		rec.HRIS = h
	}
	return rec
}

// RegisterReconciler puts the reconciler workflow and its activities on a
// worker.
func RegisterReconciler(w worker.Registry, rec *activities.Reconcile) {
	w.RegisterWorkflow(workflows.Reconciler)
	w.RegisterActivity(rec)
}

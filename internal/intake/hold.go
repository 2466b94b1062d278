package intake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Hold is the client side of the blast-radius hold workflow
// (workflows.Hold): the intake asks it for admission, operators list,
// release and discard what it holds.
//
// The intake uses an update, not a signal: it must know at once whether a
// start may go (201) or is held (202), and updates to one workflow are
// handled one at a time, so concurrent intake replicas can never together
// let more through than the window allows. Counting from visibility instead
// would be eventually consistent and racy, and the count must survive an
// intake restart: the workflow's state does.
type Hold struct {
	Client client.Client
	// ID is the hold's workflow ID (workflows.HoldWorkflowID).
	ID string
	// TaskQueue is where the hold runs (a worker with workflows.Hold
	// registered must poll it; the intake's admissions wait for it).
	TaskQueue string
	// Config is what releases start joiners with.
	Config config.Config
}

// HoldTaskQueue is the task queue the hold of cfg runs on: its own, next to
// the joiners', so that the processes hosting it (the intake, `starter
// hold`) never receive joiner tasks, and the joiner worker needs no change.
func HoldTaskQueue(cfg config.Config) string { return cfg.TaskQueue + "-intake-hold" }

// defaultTaskQueue is config's default JOINERY_TASK_QUEUE.
const defaultTaskQueue = "joinery-joiners"

// HoldID is the hold's workflow ID for cfg: workflows.HoldWorkflowID on the
// default task queue, and one per task queue otherwise, so that two
// deployments (or two tests) on one namespace never share a window.
func HoldID(cfg config.Config) string {
	if cfg.TaskQueue == "" || cfg.TaskQueue == defaultTaskQueue {
		return workflows.HoldWorkflowID
	}
	return workflows.HoldWorkflowID + "-" + cfg.TaskQueue
}

// HoldFor is the hold of cfg's task queue.
func HoldFor(c client.Client, cfg config.Config) *Hold {
	return &Hold{Client: c, ID: HoldID(cfg), TaskQueue: HoldTaskQueue(cfg), Config: cfg}
}

// StartWorker runs a worker for the hold workflow on h.TaskQueue until stop
// is called. The intake hosts one (TemporalStarter does, on its first
// admission) and so does `starter hold`, so the guard answers whenever
// either runs; several hosts at once are fine (Temporal hands each task to
// one of them).
func (h *Hold) StartWorker() (stop func(), err error) {
	w := worker.New(h.Client, h.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.Hold)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("hold worker on %s: %w", h.TaskQueue, err)
	}
	return w.Stop, nil
}

// Ensure starts the hold if it is not running. Starting it is idempotent
// (an existing run is used), so concurrent intakes may all call it; the
// intake calls it when an admission finds no hold.
func (h *Hold) Ensure(ctx context.Context) error {
	_, err := h.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       h.ID,
		TaskQueue:                h.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            "Intake blast-radius hold: mass HR events wait here for an operator",
		StaticDetails:            "List, release or discard with `starter hold list|release|discard`.",
	}, workflows.Hold, workflows.HoldState{})
	if err != nil {
		return fmt.Errorf("start the hold %s: %w", h.ID, err)
	}
	return nil
}

// gone says whether err means the hold is not running (never started, or
// ended by someone), so that starting it and asking again is right.
func gone(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf) || strings.Contains(err.Error(), "workflow execution already completed")
}

func (h *Hold) update(ctx context.Context, name string, arg, out any) error {
	try := func() error {
		handle, err := h.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: h.ID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return err
		}
		return handle.Get(ctx, out)
	}
	err := try()
	if err != nil && gone(err) {
		if serr := h.Ensure(ctx); serr != nil {
			return serr
		}
		err = try()
	}
	if err != nil {
		return fmt.Errorf("hold %s: %s: %w", h.ID, name, err)
	}
	return nil
}

// Admit asks whether the request's item may be carried out now.
func (h *Hold) Admit(ctx context.Context, req workflows.AdmitRequest) (workflows.Admission, error) {
	var a workflows.Admission
	err := h.update(ctx, workflows.UpdateHoldAdmit, req, &a)
	return a, err
}

// View is what the hold holds now; an absent hold holds nothing.
func (h *Hold) View(ctx context.Context) (workflows.HoldView, error) {
	var v workflows.HoldView
	val, err := h.Client.QueryWorkflow(ctx, h.ID, "", workflows.QueryHold)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return v, nil
		}
		return v, fmt.Errorf("query the hold %s: %w", h.ID, err)
	}
	if err := val.Get(&v); err != nil {
		return v, err
	}
	return v, nil
}

// Discard drops the named items (or all) for good; the hold logs who did
// it and why. It returns what it dropped.
func (h *Hold) Discard(ctx context.Context, keys []string, all bool, by, reason string) ([]workflows.HoldItem, error) {
	var gone []workflows.HoldItem
	err := h.update(ctx, workflows.UpdateHoldDiscard, workflows.HoldDecision{Keys: keys, All: all, By: by, Reason: reason}, &gone)
	return gone, err
}

// Released is what releasing one item did.
type Released struct {
	Key     string `json:"key"`
	HRISID  string `json:"hrisId"`
	Action  string `json:"action"`
	Outcome string `json:"outcome"`
	// Error is set when the item could not be carried out now and stays held.
	Error string `json:"error,omitempty"`
}

// Release carries out the named items (or all) and then lets go of them,
// recording who released them. Starts go through run.StartJoiner, so the HR
// record is checked again (a hold often outlives the bad import that caused
// it) and a joiner is started at most once: its workflow ID derives from
// the HR record, so a release that is repeated, or runs twice at once,
// collapses onto "already running". An item that fails for a transient
// reason stays held and is reported. The release bypasses the window: the
// operator has confirmed.
func (h *Hold) Release(ctx context.Context, keys []string, all bool, by string) ([]Released, error) {
	v, err := h.View(ctx)
	if err != nil {
		return nil, err
	}
	var out []Released
	done := workflows.HoldDecision{By: by, Outcomes: map[string]string{}}
	for _, it := range v.Held {
		if !all && !slices.Contains(keys, it.Key()) {
			continue
		}
		r := Released{Key: it.Key(), HRISID: it.HRISID, Action: it.Action}
		switch it.Action {
		case workflows.HoldStart:
			in := *it.Input
			in.RequestedBy = strings.TrimSpace(in.RequestedBy + " (released by " + by + ")")
			res, err := run.StartJoiner(ctx, h.Client, h.Config, in)
			var ie *activities.IneligibleError
			switch {
			case errors.As(err, &ie):
				r.Outcome = "refused: " + ie.Reason
			case err != nil:
				r.Error = err.Error()
			default:
				r.Outcome = string(res.Outcome)
			}
		case workflows.HoldRescind:
			err := run.Signal(ctx, h.Client, it.HRISID, workflows.SignalRescind, *it.Rescind)
			switch {
			case errors.Is(err, run.ErrNoRunningJoiner):
				r.Outcome = "nothing to rescind"
			case err != nil:
				r.Error = err.Error()
			default:
				r.Outcome = "rescinded"
			}
		}
		if r.Error == "" {
			done.Keys = append(done.Keys, r.Key)
			done.Outcomes[r.Key] = r.Outcome
		}
		out = append(out, r)
	}
	if !all {
		for _, k := range keys {
			if !slices.ContainsFunc(out, func(r Released) bool { return r.Key == k }) {
				out = append(out, Released{Key: k, Outcome: "not held"})
			}
		}
	}
	if len(done.Keys) > 0 {
		var gone []workflows.HoldItem
		if err := h.update(ctx, workflows.UpdateHoldRelease, done, &gone); err != nil {
			return out, fmt.Errorf("carried out %d items but could not let go of them (a repeated release collapses onto them): %w", len(done.Keys), err)
		}
	}
	return out, nil
}

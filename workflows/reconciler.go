package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
)

// rc and sw are only used for method references to the reconciler's and
// the sweeper's activities.
var (
	rc *activities.Reconcile
	sw *activities.Sweep
)

// ReconcilerScheduleID is the Temporal Schedule that runs the reconciler
// (starter reconcile schedule creates or updates it); its runs get the
// workflow ID ReconcilerScheduleID plus the schedule's timestamp.
const ReconcilerScheduleID = "joinery-reconciler"

// ReconcileInput is one reconciler run's input.
type ReconcileInput struct {
	// DryRun lists what would be revoked and changes nothing.
	DryRun bool `json:"dryRun,omitempty"`
	// MaxJoiners bounds how many joiners the run judges (0: the
	// activities' default).
	MaxJoiners int `json:"maxJoiners,omitempty"`
	// MinAge raises the activities' minimum age of what may be revoked
	// (it can never lower it).
	MinAge time.Duration `json:"minAge,omitempty"`
	// Keys, when set, judges only these joiners (keys, not workflow IDs).
	Keys []string `json:"keys,omitempty"`
}

// ReconcileReport is what a reconciler run found and did. It names
// objects (DNs, KV paths, role names), never a secret.
type ReconcileReport struct {
	DryRun bool `json:"dryRun"`
	// Orphans are the joiners whose holdings no live joiner accounts for,
	// with each item (done, or its error, in a real run).
	Orphans []activities.Orphan `json:"orphans,omitempty"`
	// Found counts the orphans' items; Revoked those revoked by this run;
	// Failed those that could not be; Young those skipped for their age.
	Found   int `json:"found"`
	Revoked int `json:"revoked"`
	Failed  int `json:"failed"`
	Young   int `json:"young"`
	// Judged, Live, Kept, Clean, Unjudged, Ignored: see
	// activities.ReconcileList. More: the run stopped at its bounds (pages
	// or report size) and the next run continues.
	Judged   int      `json:"judged"`
	Live     int      `json:"live"`
	Kept     int      `json:"kept"`
	Clean    int      `json:"clean"`
	Unjudged []string `json:"unjudged,omitempty"`
	More     bool     `json:"more,omitempty"`
	Ignored  int      `json:"ignored,omitempty"`
	// Errors are orphans whose revocation failed as a whole.
	Errors []string `json:"errors,omitempty"`
	// Sweep is what the wrapping-token sweep found and did (nil when no
	// sweeper is deployed, or for runs from before the sweep).
	Sweep *SweepReport `json:"sweep,omitempty"`
}

// SweepReport is the wrapping-token sweep's part of a report: live
// wrapping tokens for Joinery's paths that no handover ledger records
// (activities/sweep.go explains how they arise and why they are safe to
// revoke).
type SweepReport struct {
	// Looked: Joinery's live wrapping tokens seen; Young: those too
	// young to judge; Recorded: old ones an index lists (handovers, left
	// alone).
	Looked   int `json:"looked"`
	Young    int `json:"young"`
	Recorded int `json:"recorded"`
	// Orphans are what the sweeper's revoke judged unrecorded: revoked
	// (Revoked) unless DryRun.
	Orphans []activities.WrapCandidate `json:"orphans,omitempty"`
	Revoked int                        `json:"revoked"`
	// Skipped and Failed as the sweeper reported them; Error when the
	// sweep as a whole did not run (the sweeper down, a ledger unreadable).
	Skipped []string `json:"skipped,omitempty"`
	Failed  []string `json:"failed,omitempty"`
	Error   string   `json:"error,omitempty"`
	More    bool     `json:"more,omitempty"`
}

var (
	// The listing reads the whole directory in pages and judges each
	// joiner; it heartbeats per page and per joiner.
	optsReconcileList = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 5, NonRetryableErrorTypes: []string{activities.ErrTypeOrderRefused}},
	}
	// The sweeper's calls go to its own queue and process. A sweeper that
	// is not running must not hold the run: ScheduleToStart ends the wait
	// and the report says so; the next run tries again.
	optsSweep = workflow.ActivityOptions{
		ScheduleToStartTimeout: 5 * time.Minute,
		StartToCloseTimeout:    15 * time.Minute,
		HeartbeatTimeout:       2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeOrderRefused, activities.ErrTypeInvalidJoiner}},
	}
	// One orphan's revocation: retried a few times; what is left is found
	// again by the next scheduled run (every step is idempotent).
	optsReconcileRevoke = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 5, NonRetryableErrorTypes: []string{activities.ErrTypeOrderRefused, activities.ErrTypeInvalidJoiner}},
	}
)

// Reconciler finds what no live joiner accounts for (entries with Joinery's
// marker, memberships, initial credentials and workload AppRoles of closed
// or unknown joiners) and, unless DryRun, revokes it through the reconcile
// activities, which judge each joiner again right before they act. A
// Temporal Schedule runs it (see ReconcilerScheduleID); its result is the
// report.
func Reconciler(ctx workflow.Context, in ReconcileInput) (ReconcileReport, error) {
	rep := ReconcileReport{DryRun: in.DryRun}
	if in.MaxJoiners < 0 || in.MinAge < 0 {
		return rep, temporal.NewNonRetryableApplicationError("maxJoiners and minAge must not be negative", activities.ErrTypeInvalidJoiner, nil)
	}
	lctx := withOptions(ctx, optsReconcileList)
	rctx := withOptions(ctx, optsReconcileRevoke)
	after, sweeperQueue := "", ""
	for page := 0; ; page++ {
		if page == maxReconcilePages || rep.Found >= maxReportItems {
			rep.More = true
			break
		}
		var list activities.ReconcileList
		if err := workflow.ExecuteActivity(lctx, rc.ReconcileListOrphans, activities.ReconcileListInput{
			MaxJoiners: in.MaxJoiners, MinAge: in.MinAge, Keys: in.Keys, After: after}).Get(lctx, &list); err != nil {
			return rep, err
		}
		rep.Judged += list.Judged
		rep.Live += list.Live
		rep.Kept += list.Kept
		rep.Clean += list.Clean
		rep.Ignored = max(rep.Ignored, list.Ignored)
		rep.Unjudged = append(rep.Unjudged, list.Unjudged...)
		if page == 0 {
			sweeperQueue = list.SweeperQueue
		}
		for _, o := range list.Orphans {
			rep.add(rctx, in, o)
		}
		if list.Next == "" || list.Next <= after {
			break
		}
		after = list.Next
	}
	// After the orphans: their ledgers are ended and gone by now, so what
	// the sweep finds for them is unrecorded and revoked too.
	if sweeperQueue != "" && workflow.GetVersion(ctx, versionSweepWrappingTokens, workflow.DefaultVersion, 1) == 1 {
		rep.Sweep = sweep(ctx, in, sweeperQueue)
	}
	if workflow.GetVersion(ctx, versionReconcileMetrics, workflow.DefaultVersion, 1) == 1 {
		// Best effort: the report is the result either way.
		mctx := withOptions(ctx, optsReconcileMetrics)
		if err := workflow.ExecuteActivity(mctx, rc.ReconcileRecordMetrics, activities.ReconcileMetricsInput{Findings: rep.findings()}).Get(mctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("reconciler metrics not recorded", "error", err)
		}
	}
	workflow.GetLogger(ctx).Info("reconciler finished", "dryRun", in.DryRun, "orphans", len(rep.Orphans),
		"found", rep.Found, "revoked", rep.Revoked, "failed", rep.Failed, "young", rep.Young)
	return rep, nil
}

// maxReconcilePages bounds one run's listing calls (500 joiners each): a
// directory larger than that is finished by the next run.
const maxReconcilePages = 200

// maxReportItems bounds a report's items (it is the workflow's result, kept
// in history): past it, the run stops and the next one continues.
const maxReportItems = 5000

// add records orphan o in the report, revoking it first unless DryRun.
func (rep *ReconcileReport) add(rctx workflow.Context, in ReconcileInput, o activities.Orphan) {
	if !in.DryRun && len(o.Items) > 0 {
		var done activities.Orphan
		err := workflow.ExecuteActivity(rctx, rc.ReconcileRevokeOrphan,
			activities.ReconcileRevokeInput{Key: o.Key, MinAge: in.MinAge}).Get(rctx, &done)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %s", o.Key, rootMessage(err)))
			for i := range o.Items {
				o.Items[i].Error = "not revoked: " + rootMessage(err)
			}
		} else {
			// What the activity found and did when it re-judged the
			// joiner right before acting.
			done.Young = append(done.Young, o.Young...)
			o = done
		}
	}
	for _, it := range o.Items {
		rep.Found++
		switch {
		case it.Done:
			rep.Revoked++
		case it.Error != "":
			rep.Failed++
		}
	}
	rep.Young += len(o.Young)
	rep.Orphans = append(rep.Orphans, o)
}

// versionReconcileMetrics makes the reconciler hand its findings to the
// worker's metrics (joinery_reconciler_findings).
const versionReconcileMetrics = "reconcile-metrics"

// optsReconcileMetrics: a local gauge update, a few tries.
var optsReconcileMetrics = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{activities.ErrTypeOrderRefused, activities.ErrTypeInvalidJoiner}},
}

// findings counts what the run found by kind: each item kind, the
// wrapping-token sweep's orphans, and the joiners it could not judge. A
// dry run's findings count too: they are what is there.
func (rep *ReconcileReport) findings() map[string]int {
	out := map[string]int{}
	for _, o := range rep.Orphans {
		for _, it := range o.Items {
			out[it.Kind]++
		}
	}
	if rep.Sweep != nil && len(rep.Sweep.Orphans) > 0 {
		out["wrapping-token"] = len(rep.Sweep.Orphans)
	}
	if len(rep.Unjudged) > 0 {
		out["unjudged"] = len(rep.Unjudged)
	}
	return out
}

// versionSweepWrappingTokens adds the wrapping-token sweep to the
// reconciler.
const versionSweepWrappingTokens = "sweep-wrapping-tokens"

// sweep finds the live wrapping tokens for Joinery's paths that no handover
// index lists and, unless DryRun, has the sweeper revoke them. The sweeper
// lists and revokes (it may list token accessors and read the indexes; the
// worker may not); the worker first indexes the candidates' ledgers, for
// ledgers written before the index existed (it may read ledgers; the
// sweeper may not). The revoke judges every accessor again from Vault, so
// what this function passes it decides nothing by itself.
func sweep(ctx workflow.Context, in ReconcileInput, queue string) *SweepReport {
	o := optsSweep
	o.TaskQueue = queue
	sctx := withOptions(ctx, o)
	lctx := withOptions(ctx, optsReconcileList)
	rep := &SweepReport{}
	var list activities.SweepList
	if err := workflow.ExecuteActivity(sctx, sw.SweepListWrappingTokens, activities.SweepListInput{MinAge: in.MinAge, Keys: in.Keys}).Get(sctx, &list); err != nil {
		rep.Error = "the sweeper did not list the wrapping tokens: " + rootMessage(err)
		return rep
	}
	rep.Looked, rep.Young, rep.Recorded, rep.More = list.Looked, list.Young, list.Recorded, list.More
	rep.Failed = append(rep.Failed, list.Failed...)
	if len(list.Old) == 0 {
		return rep
	}
	var idx activities.IndexHandoversResult
	if err := workflow.ExecuteActivity(lctx, rc.ReconcileIndexHandovers, activities.IndexHandoversInput{Tokens: list.Old}).Get(lctx, &idx); err != nil {
		rep.Error = "the handover ledgers could not be indexed: " + rootMessage(err)
		return rep
	}
	rep.Failed = append(rep.Failed, idx.Failed...)
	var accs []string
	for _, c := range list.Old {
		// A candidate whose ledger could not be indexed may be a handover
		// from before the index: not this run.
		if !slices.Contains(idx.Unindexed, c.Accessor) {
			accs = append(accs, c.Accessor)
		}
	}
	if len(accs) == 0 {
		return rep
	}
	var done activities.SweepRevoked
	if err := workflow.ExecuteActivity(sctx, sw.SweepRevokeWrappingTokens, activities.SweepRevokeInput{
		Accessors: accs, MinAge: in.MinAge, DryRun: in.DryRun}).Get(sctx, &done); err != nil {
		rep.Error = "the sweeper did not revoke the orphaned wrapping tokens: " + rootMessage(err)
		return rep
	}
	// The revoke's own verdicts: what it judged an orphan (revoked, or
	// would be in a dry run) and what it left.
	rep.Orphans = done.Revoked
	if !in.DryRun {
		rep.Revoked = len(done.Revoked)
	}
	rep.Skipped, rep.Failed = done.Skipped, append(rep.Failed, done.Failed...)
	return rep
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Reconciler settings read by the CLI (documented in README, "Reconciler").
const (
	// EnvReconcileInterval is how often the schedule runs the reconciler.
	EnvReconcileInterval = "JOINERY_RECONCILE_INTERVAL"
	// DefaultReconcileInterval is its default: often enough that a
	// terminated joiner's access ends within the hour, rare enough that a
	// full directory read stays cheap.
	DefaultReconcileInterval = time.Hour
	// minReconcileInterval keeps a typo (1s) from turning the reconciler
	// into a directory-wide scan per second.
	minReconcileInterval = time.Minute
)

func init() {
	commands["reconcile"] = cmdReconcile
}

// reconcileInterval reads JOINERY_RECONCILE_INTERVAL (a Go duration).
func reconcileInterval(getenv func(string) string) (time.Duration, error) {
	v := strings.TrimSpace(getenv(EnvReconcileInterval))
	if v == "" {
		return DefaultReconcileInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a duration (e.g. 1h, 30m)", EnvReconcileInterval, v)
	}
	if d < minReconcileInterval {
		return 0, fmt.Errorf("%s=%s: at least %s", EnvReconcileInterval, d, minReconcileInterval)
	}
	return d, nil
}

// cmdReconcile: `starter reconcile [--dry-run] [--key K]... [--json]` runs
// the reconciler once and prints its report; `starter reconcile schedule
// [--dry-run]` creates or updates the Temporal Schedule that runs it every
// JOINERY_RECONCILE_INTERVAL.
//
// Who can reach it: whoever holds Temporal access (the operator's client
// identity). What they could make Joinery do: revoke what no live joiner
// accounts for, which is the reconciler's job; the activities judge every
// joiner themselves, so no flag of this command can point them at a live
// joiner's grants, and --key takes joiner keys that are validated before
// anything starts.
func cmdReconcile(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "schedule" {
		return cmdReconcileSchedule(ctx, cfg, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dry := fs.Bool("dry-run", false, "list what would be revoked; change nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var keys stringList
	fs.Var(&keys, "key", "judge only this joiner (HRIS ID or non-human key; repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 0 {
		fmt.Fprintln(stderr, "usage: starter reconcile [--dry-run] [--key K]... [--json] | starter reconcile schedule [--dry-run]")
		return exitUsage
	}
	for i, k := range keys {
		k = strings.TrimPrefix(k, "joiner-")
		if !validKey(k) {
			fmt.Fprintf(stderr, "--key %q: a joiner key is letters, digits, '.', '_' and '-'\n", keys[i])
			return exitUsage
		}
		keys[i] = k
	}
	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer c.Close()
	id := fmt.Sprintf("%s-manual-%d", workflows.ReconcilerScheduleID, time.Now().UnixNano())
	wr, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: cfg.TaskQueue,
		WorkflowExecutionTimeout: time.Hour}, workflows.Reconciler, workflows.ReconcileInput{DryRun: *dry, Keys: keys})
	if err != nil {
		fmt.Fprintf(stderr, "start the reconciler: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "reconciler %s started (%s)\n", id, run.WorkflowURL(cfg, id))
	var rep workflows.ReconcileReport
	if err := wr.Get(ctx, &rep); err != nil {
		fmt.Fprintf(stderr, "reconciler %s: %v\n", id, err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(stdout, rep)
	}
	if rep.Failed > 0 || len(rep.Errors) > 0 {
		return exitFailed
	}
	return exitOK
}

func validKey(k string) bool {
	if k == "" || k == "." || k == ".." || len(k) > 200 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// printReport renders a report for a terminal: one line per item.
func printReport(w io.Writer, rep workflows.ReconcileReport) {
	mode := "revoked"
	if rep.DryRun {
		mode = "dry run: nothing changed"
	}
	fmt.Fprintf(w, "reconciler (%s): judged %d joiners: %d live, %d kept, %d clean, %d with orphans\n",
		mode, rep.Judged, rep.Live, rep.Kept, rep.Clean, len(rep.Orphans))
	fmt.Fprintf(w, "items: %d found, %d revoked, %d failed, %d too young\n", rep.Found, rep.Revoked, rep.Failed, rep.Young)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, o := range rep.Orphans {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.WorkflowID, o.Status, o.Reason)
		for _, it := range o.Items {
			state := "found"
			switch {
			case it.Done:
				state = "revoked"
			case it.Error != "":
				state = "FAILED: " + it.Error
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", it.Kind, it.ID, state)
		}
		for _, it := range o.Young {
			fmt.Fprintf(tw, "  %s\t%s\tyounger than the minimum age: left for the next run\n", it.Kind, it.ID)
		}
	}
	_ = tw.Flush()
	if len(rep.Unjudged) > 0 {
		fmt.Fprintf(w, "not judged this run (a server fault; nothing of theirs touched): %s\n", strings.Join(rep.Unjudged, ", "))
	}
	if rep.More {
		fmt.Fprintln(w, "more joiners than one run judges: the next run continues")
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error: "+e)
	}
	printSweep(w, rep.DryRun, rep.Sweep)
}

// printSweep renders the wrapping-token sweep's part of a report.
func printSweep(w io.Writer, dry bool, s *workflows.SweepReport) {
	if s == nil {
		fmt.Fprintln(w, "wrapping-token sweep: not run (JOINERY_SWEEPER_TASK_QUEUE is off)")
		return
	}
	fmt.Fprintf(w, "wrapping-token sweep: %d of Joinery's live wrapping tokens: %d too young, %d recorded in a handover index, %d unrecorded (%d revoked)\n",
		s.Looked, s.Young, s.Recorded, len(s.Orphans), s.Revoked)
	state := "revoked unless listed below"
	if dry {
		state = "would be revoked"
	}
	for _, o := range s.Orphans {
		fmt.Fprintf(w, "  %s\t%s\t%s\tcreated %s\t%s\n", o.Kind, o.Key, o.Accessor, o.CreatedAt.Format(time.RFC3339), state)
	}
	for _, x := range s.Skipped {
		fmt.Fprintln(w, "  skipped: "+x)
	}
	for _, x := range s.Failed {
		fmt.Fprintln(w, "  FAILED: "+x)
	}
	if s.More {
		fmt.Fprintln(w, "  more tokens than one run looks at: the next run continues")
	}
	if s.Error != "" {
		fmt.Fprintln(w, "sweep error: "+s.Error)
	}
}

// cmdReconcileSchedule creates the reconciler's schedule, or updates it to
// the current interval, task queue and mode: running it again is harmless.
//
// Why here and not at worker start: creating a schedule needs Temporal
// rights the worker does not otherwise need, several workers starting
// together would race to write it, and an operator changing the interval
// should see the change take effect (this command says what it did).
func cmdReconcileSchedule(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reconcile schedule", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dry := fs.Bool("dry-run", false, "the scheduled runs only list (report) and change nothing")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 0 {
		fmt.Fprintln(stderr, "usage: starter reconcile schedule [--dry-run]")
		return exitUsage
	}
	every, err := reconcileInterval(os.Getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer c.Close()
	action, what, err := ensureReconcileSchedule(ctx, c, workflows.ReconcilerScheduleID, cfg.TaskQueue, every, *dry)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "schedule %s %s: %s\n", workflows.ReconcilerScheduleID, action, what)
	return exitOK
}

// ensureReconcileSchedule creates or updates the schedule id; it returns
// "created" or "updated" and a description.
func ensureReconcileSchedule(ctx context.Context, c client.Client, id, queue string, every time.Duration, dry bool) (string, string, error) {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	act := &client.ScheduleWorkflowAction{
		ID: id, Workflow: workflows.Reconciler, TaskQueue: queue,
		Args: []any{workflows.ReconcileInput{DryRun: dry}},
		// A run never outlasts the next one's slot by much; Skip below
		// keeps two from overlapping.
		WorkflowExecutionTimeout: every + 30*time.Minute,
	}
	what := fmt.Sprintf("every %s on task queue %s (dry run: %v), overlapping runs skipped", every, queue, dry)
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{ID: id, Spec: spec, Action: act,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP})
	if err == nil {
		return "created", what, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return "", "", fmt.Errorf("create schedule %s: %w", id, err)
	}
	h := sc.GetHandle(ctx, id)
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &spec
		s.Action = act
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return "", "", fmt.Errorf("update schedule %s: %w", id, err)
	}
	return "updated", what, nil
}

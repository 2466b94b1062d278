package activities

// The reconciler's activities: find what no live joiner accounts for, and
// revoke it with the same connector operations the joiners' own revocation
// uses (RevokeWorkload + DeletePolicy, RemoveMember, RevokeInitialCredential,
// Disable), each idempotent and each asserting Joinery's marker.
//
// Why a reconciler at all: `temporal workflow terminate` runs no workflow
// code, so a terminated joiner's compensations never run; a joiner whose
// revocation reported CompensationFailed may have closed with something
// left; history past retention says nothing any more. The directory and
// Vault still hold what it was given.
//
// What counts as live. A joiner is live while its workflow (joiner-<key>)
// has a Running execution. That is asked of Temporal with
// DescribeWorkflowExecution, which reads the execution's own state (strongly
// consistent), not visibility (eventually consistent, and so able to miss a
// joiner that has just started). A live joiner's grants are never touched:
// a running joiner holds what it holds, and its own code ends it.
//
// What a closed joiner may keep. An employee joiner that completed
// (outcome "completed") handed its account over to steady state: it is the
// leaver process's from then on, and the reconciler leaves it alone unless
// the HR record's end date has passed. Every other way to close (expired,
// revoked, rescinded, rejected, failed, terminated, cancelled, timed out)
// means the joiner should hold nothing: what is left is an orphan. A joiner
// Temporal has no record of (never started, or history past retention): a
// non-human one holds nothing (non-human access always has a running
// joiner); a person's account is judged by the HR record.
//
// The race with a joiner that is just starting. The candidates are listed
// first and judged later, and a new run of a joiner may start in between.
// So RevokeOrphan re-reads everything itself right before it acts (the
// Running check, the entry by its marker), and entries and credentials
// younger than MinAge are skipped: a run that created something seconds ago
// is given time to be seen as the owner, whatever the clocks say.
//
// Who may call. Any Temporal client can run a workflow that schedules these
// activities on Joinery's task queue, so they take no orders: the input is
// at most a joiner key, the caller must be a Reconciler workflow, and what
// is revoked is re-derived from the directory, Vault and Temporal. The most
// a rogue Reconciler can make Joinery do is clean up a real orphan early.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
)

// ReconcilerWorkflowType is the registered name of the reconciler workflow,
// the only workflow type whose calls the reconcile activities carry out.
const ReconcilerWorkflowType = "Reconciler"

// Reconciler defaults (see Reconcile's fields).
const (
	DefaultReconcileMinAge     = 10 * time.Minute
	DefaultReconcileLookback   = 30 * 24 * time.Hour
	DefaultReconcileMaxJoiners = 500
	// reconcileMaxItems bounds one report's items (activity results live
	// in history): a directory with more orphans is cleaned over several
	// runs.
	reconcileMaxItems = 2000
)

// Item kinds in a report (the Resource kinds joiners use).
const (
	ItemEntry      = "ldap-entry"
	ItemMembership = "group-membership"
	ItemSecret     = "vault-secret"
	ItemAppRole    = "vault-approle"
)

// ReconcileDirectory is what the reconciler reads and changes in the
// directory; *directory.Client implements it.
type ReconcileDirectory interface {
	ListManaged(ctx context.Context, pageSize int, fn func([]directory.ManagedEntry) error) error
	ManagedByOwner(ctx context.Context, owner string) ([]directory.ManagedEntry, error)
	GroupsOf(ctx context.Context, memberDN string) ([]string, error)
	RemoveMember(ctx context.Context, groupDN, memberDN, owner string) error
	Disable(ctx context.Context, dn, owner string) error
}

// ReconcileSecrets is what the reconciler reads and revokes in Vault;
// *secrets.Client implements it. The worker's Vault policy has no list
// capability, so objects are asked about by the names a joiner's key gives.
type ReconcileSecrets interface {
	JoinerPath(joinerKey, name string) string
	Metadata(ctx context.Context, path string) (secrets.SecretMetadata, bool, error)
	RevokeInitialCredential(ctx context.Context, path, accessor string) error
	AppRoleExists(ctx context.Context, role string) (bool, error)
	// Handovers reads a handover ledger (every wrapping accessor handed
	// out, never a token); WorkloadLedgerPath names a role's.
	Handovers(ctx context.Context, ledgerPath string) ([]secrets.HandoverRecord, error)
	WorkloadLedgerPath(role string) string
	// IndexHandovers indexes a ledger written before handover indexes
	// existed (the wrapping-token sweep, activities/sweep.go).
	IndexHandovers(ctx context.Context, ledgerPath string) error
	RevokeWorkload(ctx context.Context, role string) error
	DeletePolicy(ctx context.Context, name string) error
}

// JoinerRecords is what the reconciler asks Temporal; client.Client
// implements it.
type JoinerRecords interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	GetWorkflow(ctx context.Context, workflowID, runID string) client.WorkflowRun
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// ReconcileHRIS reads a person's HR record.
type ReconcileHRIS interface {
	GetWorker(ctx context.Context, id string) (hris.Worker, error)
}

// Reconcile holds the reconciler's activities. Directory, Secrets, Joiners
// and HRIS are required.
type Reconcile struct {
	Directory ReconcileDirectory
	Secrets   ReconcileSecrets
	Joiners   JoinerRecords
	HRIS      ReconcileHRIS
	Logger    *slog.Logger
	// MinAge: entries and credentials younger than this are never revoked
	// (default DefaultReconcileMinAge). A run's input can only raise it.
	MinAge time.Duration
	// Lookback: how far back closed joiners are listed from Temporal to
	// find Vault objects without a directory entry (default
	// DefaultReconcileLookback).
	Lookback time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// TaskQueue is the queue Joinery's joiners run on (the worker's); ""
	// means the queue this activity was dispatched on, and outside an
	// activity skips the queue check.
	TaskQueue string
	// SweeperQueue is the wrapping-token sweeper's task queue
	// (activities/sweep.go); "" when no sweeper is deployed.
	SweeperQueue string
	// Metrics receives each run's findings by kind (the worker's
	// joinery_reconciler_findings gauges); nil records nothing.
	Metrics ReconcileRecorder
}

// ReconcileRecorder takes a reconciler run's findings by kind (short
// category names, never identities) and when it ended;
// *metrics.Reconciler implements it.
type ReconcileRecorder interface {
	RecordReconcile(findings map[string]int, at time.Time) error
}

// ReconcileMetricsInput is a run's findings by kind.
type ReconcileMetricsInput struct {
	Findings map[string]int `json:"findings"`
}

// ReconcileRecordMetrics hands a run's findings to the worker's metrics.
// It is an activity, not workflow code, so that a replay never reports an
// old run again; a Reconciler of another queue (anyone can name a workflow
// "Reconciler") is refused like the other reconcile activities.
func (r *Reconcile) ReconcileRecordMetrics(ctx context.Context, in ReconcileMetricsInput) error {
	if err := r.admitReconciler(ctx, "ReconcileRecordMetrics", fmt.Sprintf("record %d kinds of findings", len(in.Findings))); err != nil {
		return err
	}
	if r.Metrics == nil {
		return nil
	}
	if err := r.Metrics.RecordReconcile(in.Findings, r.now()); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidJoiner, nil)
	}
	return nil
}

// ReconcileListInput asks for the orphans.
type ReconcileListInput struct {
	// MaxJoiners bounds how many joiners one run judges (default and cap
	// DefaultReconcileMaxJoiners); the report says when more remain.
	MaxJoiners int `json:"maxJoiners,omitempty"`
	// MinAge raises (never lowers) the activities' own minimum age.
	MinAge time.Duration `json:"minAge,omitempty"`
	// Keys, when set, judges only these joiners (an operator's "reconcile
	// these now") instead of listing the directory and Temporal.
	Keys []string `json:"keys,omitempty"`
	// After resumes a listing: only keys sorting after it are judged.
	After string `json:"after,omitempty"`
}

// ReconcileItem is one thing an orphan still holds. It names objects,
// never a secret.
type ReconcileItem struct {
	Kind string `json:"kind"`
	// ID: the entry's DN, the group's DN, the KV path, the role name.
	ID     string `json:"id"`
	Detail string `json:"detail,omitempty"`
	// Done: revoked by this run; Error: why not (a revoke run only).
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// Orphan is a joiner that no live joiner accounts for, and what it holds.
type Orphan struct {
	Key        string `json:"key"`
	WorkflowID string `json:"workflowId"`
	// Status is the joiner's Temporal status (Terminated, Completed, ...,
	// or NotFound); Reason says why its holdings are orphans.
	Status string          `json:"status"`
	Reason string          `json:"reason"`
	Items  []ReconcileItem `json:"items"`
	// Young are holdings skipped because they are younger than MinAge.
	Young []ReconcileItem `json:"young,omitempty"`
}

// ReconcileList is ReconcileListOrphans' result.
type ReconcileList struct {
	// Orphans hold something no live joiner accounts for.
	Orphans []Orphan `json:"orphans,omitempty"`
	// Judged counts the joiners looked at; Live those running; Kept those
	// closed with their account handed over (completed employees);
	// Clean those closed with nothing left.
	Judged int `json:"judged"`
	Live   int `json:"live"`
	Kept   int `json:"kept"`
	Clean  int `json:"clean"`
	// Unjudged are joiners that could not be judged this run (a fault
	// reading Temporal, the HRIS or a server): nothing of theirs was
	// touched. Next is the last key judged when more remain: the next
	// call resumes after it.
	Unjudged []string `json:"unjudged,omitempty"`
	Next     string   `json:"next,omitempty"`
	// Ignored counts entries whose marker names no joiner workflow
	// (joiner-<key>); they are left alone.
	Ignored int `json:"ignored,omitempty"`
	// SweeperQueue is the task queue of the wrapping-token sweeper
	// (Reconcile.SweeperQueue), "" when none is deployed. It comes from the
	// worker's configuration, not the workflow's input, so a caller cannot
	// send the sweep elsewhere.
	SweeperQueue string `json:"sweeperQueue,omitempty"`
}

// ReconcileRevokeInput names the orphan to revoke: only its key. What is
// revoked is re-derived; see the file comment.
type ReconcileRevokeInput struct {
	Key    string        `json:"key"`
	MinAge time.Duration `json:"minAge,omitempty"`
}

func (r *Reconcile) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Reconcile) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconcile) minAge(in time.Duration) time.Duration {
	m := r.MinAge
	if m <= 0 {
		m = DefaultReconcileMinAge
	}
	return max(m, in)
}

// admitReconciler checks the caller: a Reconciler workflow. Outside an
// activity it admits (trusted code: a test, an operator tool).
//
// The type an activity sees is the scheduling workflow's own claim, so the
// run is also confirmed with Temporal: a running Reconciler on the queue this
// activity was dispatched on (Joinery's), not a workflow named "Reconciler"
// on a rogue's queue.
func (r *Reconcile) admitReconciler(ctx context.Context, step, what string) error {
	var runs ContinuedRuns
	if r.Joiners != nil {
		runs = r.Joiners
	}
	queue := ""
	if activity.IsActivity(ctx) {
		queue = activity.GetInfo(ctx).TaskQueue
	}
	return admitReconcilerRun(ctx, r.log(), runs, queue, step, what)
}

// admitReconcilerRun is the caller check of every activity only the
// Reconciler may call (the reconcile activities and the sweeper's): a
// running Reconciler on queue, Joinery's, confirmed with runs. Without runs
// or a queue it refuses (fail closed); outside an activity it admits.
func admitReconcilerRun(ctx context.Context, log *slog.Logger, runs ContinuedRuns, queue, step, what string) error {
	c := callerOf(ctx)
	if !c.inActivity {
		return nil
	}
	why := ""
	switch {
	case c.typ != ReconcilerWorkflowType:
		why = fmt.Sprintf("scheduled by a workflow of type %q, not %q", c.typ, ReconcilerWorkflowType)
	case runs == nil || queue == "":
		why = "this worker has no Temporal client or joiner queue to confirm its caller with"
	default:
		var err error
		if why, err = runVerdict(ctx, runs, c.id, c.run, ReconcilerWorkflowType, queue); err != nil {
			return err
		}
	}
	if why == "" {
		return nil
	}
	log.Warn("order refused", "event", "security", "activity", step, "workflowId", c.id,
		"workflowType", c.typ, "runId", c.run, "asked", what, "reason", why)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("order refused: %s: %s (asked: %s)", step, why, what), ErrTypeOrderRefused, nil)
}

// liveStatus reports whether a run is still alive: running, or paused by
// an operator (it resumes; its holdings are its own).
func liveStatus(st enumspb.WorkflowExecutionStatus) bool {
	return st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || st == enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED
}

// joineryRun reports whether a described run is one of Joinery's joiners: of
// type Joiner and, when the queue is known, on it. Anyone with Temporal
// access can start a workflow of any type under a joiner's ID; such a run
// neither shields a joiner's holdings (as "live") nor condemns them.
func (r *Reconcile) joineryRun(ctx context.Context, info interface {
	GetType() *commonpb.WorkflowType
	GetTaskQueue() string
}) bool {
	if info.GetType().GetName() != JoinerWorkflowType {
		return false
	}
	q := r.TaskQueue
	if q == "" && activity.IsActivity(ctx) {
		q = activity.GetInfo(ctx).TaskQueue
	}
	return q == "" || info.GetTaskQueue() == q
}

// keyOf returns the joiner key of a marker (workflow ID joiner-<key>), or
// "" when the marker names no joiner workflow.
func keyOf(owner string) string {
	// Any generation: a rehire's marker (joiner-<key>~gN) names the same
	// key, whose holdings are judged by its newest generation (holder).
	key, _, ok := ParseJoinerID(owner)
	if !ok || checkKey(key) != nil {
		return ""
	}
	return key
}

// maxGenerationPages bounds the visibility pages holder reads.
const maxGenerationPages = 10

// holder returns the workflow ID that holds joiner key's access now: the
// newest rehire generation (joiner-<key>~gN, activities/rehire.go) when
// one exists, else joiner-<key>. Generations share the key's Vault paths
// and a rehire takes over its leaver's entry under its own marker, and a
// rehire starts only once the earlier generation has closed and its entry
// is disabled, so the newest generation is the one to judge. Visibility
// may lag a rehire started seconds ago; the minimum age of holdings
// covers that moment.
func (r *Reconcile) holder(ctx context.Context, key string) (string, error) {
	id := JoinerWorkflowID(key)
	var gens []string
	var token []byte
	for page := 0; ; page++ {
		if page == maxGenerationPages {
			return "", fmt.Errorf("%s has more rehire generations than the reconciler reads: left alone", id)
		}
		resp, err := r.Joiners.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, NextPageToken: token,
			// Only Joiner runs: foreign ones, however many, never fill the
			// pages this reads.
			Query: fmt.Sprintf("WorkflowId STARTS_WITH %q AND WorkflowType = %q", id+"~g", JoinerWorkflowType)})
		if err != nil {
			return "", fmt.Errorf("list rehire generations of %s: %w", id, err)
		}
		for _, e := range resp.GetExecutions() {
			wid := e.GetExecution().GetWorkflowId()
			// Only Joinery's joiners count: anyone can start a workflow
			// named joiner-<key>~g9.
			if k, _, ok := ParseJoinerID(wid); ok && k == key && r.joineryRun(ctx, e) && !slices.Contains(gens, wid) {
				gens = append(gens, wid)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	// Newest first; a generation holds the key only once its take-over put
	// its marker on the entry (a rehire that has not taken over yet, or one
	// started only to be refused, decides nothing).
	sort.Slice(gens, func(i, j int) bool {
		_, a, _ := ParseJoinerID(gens[i])
		_, b, _ := ParseJoinerID(gens[j])
		return a > b
	})
	for _, g := range gens {
		es, err := r.Directory.ManagedByOwner(ctx, g)
		if err != nil {
			return "", classify(err)
		}
		if len(es) > 0 {
			return g, nil
		}
	}
	return id, nil
}

// checkKey accepts a joiner key: one path segment of letters, digits, '.',
// '_' and '-' (what HRIS IDs and non-human keys are made of), bounded.
func checkKey(key string) error {
	if key == "" || len(key) > 200 || key == "." || key == ".." {
		return fmt.Errorf("joiner key %q is not a key", key)
	}
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("joiner key %q contains %q", key, c)
		}
	}
	return nil
}

func heartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// ReconcileListOrphans lists the joiners whose holdings no live joiner
// accounts for: every joiner named by a marker in the directory, and every
// Joiner workflow closed within Lookback (for Vault objects without an
// entry). Nothing is changed; a dry run's report is this list.
//
// One call judges at most MaxJoiners joiners, in key order after in.After;
// Next is where the following call resumes ("" when all were judged), so a
// run covers any number of joiners in bounded activity results.
func (r *Reconcile) ReconcileListOrphans(ctx context.Context, in ReconcileListInput) (ReconcileList, error) {
	if err := r.admitReconciler(ctx, "reconcile-list", "list orphans"); err != nil {
		return ReconcileList{}, err
	}
	limit := in.MaxJoiners
	if limit <= 0 || limit > DefaultReconcileMaxJoiners {
		limit = DefaultReconcileMaxJoiners
	}
	out := ReconcileList{SweeperQueue: r.SweeperQueue}
	seen := map[string]bool{}
	add := func(key string) bool {
		if len(seen) >= maxCandidateKeys {
			return false
		}
		seen[key] = true
		return true
	}
	for _, k := range in.Keys {
		if err := checkKey(k); err != nil {
			return ReconcileList{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidJoiner, nil)
		}
		add(k)
	}
	if len(in.Keys) == 0 {
		errFull := errors.New("enough candidates")
		err := r.Directory.ListManaged(ctx, 0, func(page []directory.ManagedEntry) error {
			heartbeat(ctx, "directory", len(seen))
			for _, e := range page {
				key := keyOf(e.Owner)
				if key == "" {
					out.Ignored++
					continue
				}
				if !add(key) {
					return errFull
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errFull) {
			return ReconcileList{}, classify(err)
		}
		if err := r.closedJoiners(ctx, add); err != nil {
			return ReconcileList{}, err
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		if k > in.After {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > limit {
		keys = keys[:limit]
		out.Next = keys[limit-1]
	}
	return r.judgeAll(ctx, keys, in, out), nil
}

// reconcileParallel is how many joiners one listing judges at once.
const reconcileParallel = 4

// maxCandidateKeys bounds the keys one call collects (memory, not
// history: only the judged page is returned).
const maxCandidateKeys = 200_000

// judgeAll judges each key and adds the orphans to out.
func (r *Reconcile) judgeAll(ctx context.Context, keys []string, in ReconcileListInput, out ReconcileList) ReconcileList {
	type judged struct {
		o   Orphan
		v   verdict
		err error
	}
	// A few joiners at a time: each is several round trips to Temporal,
	// the directory, Vault and the HRIS, mostly waiting.
	res := make([]judged, len(keys))
	sem := make(chan struct{}, reconcileParallel)
	var wg sync.WaitGroup
	for i, key := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o, v, err := r.assess(ctx, key, r.minAge(in.MinAge))
			res[i] = judged{o, v, err}
		}()
		if i%50 == 0 {
			heartbeat(ctx, "judge", i)
		}
	}
	wg.Wait()
	items := 0
	for i, key := range keys {
		o, v, err := res[i].o, res[i].v, res[i].err
		if err != nil {
			r.log().Warn("reconciler: joiner not judged", "key", key, "err", err)
			out.Unjudged = append(out.Unjudged, key)
			continue
		}
		if v == verdictOrphan && len(o.Items) > 0 && items+len(o.Items) > reconcileMaxItems && i > 0 {
			// The result must stay small: resume at this key next time.
			out.Next = keys[i-1]
			return out
		}
		out.Judged++
		switch {
		case v == verdictLive:
			out.Live++
		case v == verdictKept:
			out.Kept++
		case len(o.Items) == 0 && len(o.Young) == 0:
			out.Clean++
		default:
			items += len(o.Items)
			out.Orphans = append(out.Orphans, o)
		}
	}
	return out
}

// closedJoiners adds the keys of Joiner workflows closed within Lookback,
// in bounded pages.
func (r *Reconcile) closedJoiners(ctx context.Context, add func(string) bool) error {
	lookback := r.Lookback
	if lookback <= 0 {
		lookback = DefaultReconcileLookback
	}
	since := r.now().Add(-lookback).UTC().Format(time.RFC3339)
	query := fmt.Sprintf("WorkflowType = %q AND ExecutionStatus != \"Running\" AND CloseTime > %q", JoinerWorkflowType, since)
	var token []byte
	for {
		resp, err := r.Joiners.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 200, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list closed joiners: %w", err)
		}
		heartbeat(ctx, "temporal")
		for _, e := range resp.GetExecutions() {
			if key := keyOf(e.GetExecution().GetWorkflowId()); key != "" {
				if !add(key) {
					return nil
				}
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return nil
		}
	}
}

type verdict int

const (
	verdictOrphan verdict = iota
	verdictLive
	verdictKept
)

// closedResult is the part of a joiner's result the reconciler reads
// (workflows.JoinerResult; this package cannot import workflows).
type closedResult struct {
	Outcome string `json:"outcome"`
	EndDate string `json:"endDate"`
}

// judge decides whether joiner key's holdings are accounted for. run is the
// run that created its entry ("" when none): an entry of an earlier run is
// judged by that run's end (a later run that stopped AlreadyProvisioned
// says nothing about it).
func (r *Reconcile) judge(ctx context.Context, key, id, run string) (verdict, string, string, error) {
	d, err := r.Joiners.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return r.judgeUnknown(ctx, key)
	case err != nil:
		return 0, "", "", fmt.Errorf("describe %s: %w", id, err)
	}
	info := d.GetWorkflowExecutionInfo()
	if run != "" && run != info.GetExecution().GetRunId() {
		dr, err := r.Joiners.DescribeWorkflowExecution(ctx, id, run)
		switch {
		case errors.As(err, &nf):
			// The run that created the entry is past retention: how it
			// ended is unknown, and a later run (one that stopped
			// AlreadyProvisioned, say) says nothing about it.
			return r.judgeUnknown(ctx, key)
		case err != nil:
			return 0, "", "", fmt.Errorf("describe %s run %s: %w", id, run, err)
		case dr.GetWorkflowExecutionInfo().GetFirstRunId() != "" && dr.GetWorkflowExecutionInfo().GetFirstRunId() == info.GetFirstRunId() &&
			liveStatus(info.GetStatus()) && r.joineryRun(ctx, info):
			// The latest run is of the creating run's own chain (a reset,
			// a retry or a continue-as-new of it) and still runs: it
			// holds what its chain created, whatever became of that run.
			return verdictLive, info.GetStatus().String(), "a running joiner of the same run chain (reset or continued) holds it", nil
		case dr.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			info = dr.GetWorkflowExecutionInfo()
		case dr.GetWorkflowExecutionInfo().GetFirstRunId() != info.GetFirstRunId():
			// The creating run continued as new, but the latest run is
			// not of its chain: someone started a new one under the ID
			// after the chain ended. Where the chain ended is not known
			// here, so nobody's run decides: left alone, reported.
			return 0, "", "", fmt.Errorf("%s: the latest run %s is not of the chain of run %s that created the entry: left alone",
				id, info.GetExecution().GetRunId(), run)
		}
	}
	if !r.joineryRun(ctx, info) {
		return 0, "", "", fmt.Errorf("%s: run %s is a %q on task queue %q, not Joinery's joiner: left alone",
			id, info.GetExecution().GetRunId(), info.GetType().GetName(), info.GetTaskQueue())
	}
	if liveStatus(info.GetStatus()) {
		return verdictLive, info.GetStatus().String(), "a running joiner holds it", nil
	}
	status := info.GetStatus().String() // Completed, Terminated, Canceled, ...
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return verdictOrphan, status, fmt.Sprintf("the joiner closed as %s: its own revocation never ran to the end", status), nil
	}
	var res closedResult
	if err := r.Joiners.GetWorkflow(ctx, id, info.GetExecution().GetRunId()).Get(ctx, &res); err != nil {
		return 0, "", "", fmt.Errorf("result of %s: %w", id, err)
	}
	if res.Outcome != "completed" {
		return verdictOrphan, status, fmt.Sprintf("the joiner closed %s: it should hold nothing", orDash(res.Outcome)), nil
	}
	if strings.HasPrefix(key, "nhi-") {
		// A non-human joiner never completes with access: it stays open
		// while access lasts.
		return verdictOrphan, status, "a non-human joiner closed: it should hold nothing", nil
	}
	v, _, why, err := r.judgeByHR(ctx, key, false)
	return v, status, why, err
}

// judgeUnknown judges a joiner Temporal has no record of.
func (r *Reconcile) judgeUnknown(ctx context.Context, key string) (verdict, string, string, error) {
	if strings.HasPrefix(key, "nhi-") {
		return verdictOrphan, "NotFound", "no joiner record (never started, or past retention): non-human access always has a running joiner", nil
	}
	return r.judgeByHR(ctx, key, true)
}

// judgeByHR judges a person's account whose joiner handed it over (or left
// no record): kept while the HR record has no end date in the past.
func (r *Reconcile) judgeByHR(ctx context.Context, key string, unknown bool) (verdict, string, string, error) {
	status := "Completed"
	if unknown {
		status = "NotFound"
	}
	w, err := r.HRIS.GetWorker(ctx, key)
	var ce *connectors.Error
	if errors.As(err, &ce) && ce.Type == hris.TypeNotFound {
		if unknown {
			return verdictOrphan, status, "no joiner record and no HR record: nobody accounts for it", nil
		}
		return verdictKept, status, "handed over; the HR record is gone, which is the leaver process's to act on", nil
	}
	if err != nil {
		return 0, "", "", fmt.Errorf("HR record %s: %w", key, err)
	}
	// A termination before the hire date is an earlier employment's (a
	// rehire, activities/rehire.go): it does not end this one.
	if w.TerminationDate != "" && !(w.HireDate != "" && w.TerminationDate < w.HireDate) {
		end, perr := time.Parse(time.DateOnly, w.TerminationDate)
		// Access lasts through the end date (workflows.expiresAt).
		if perr == nil && !r.now().Before(end.AddDate(0, 0, 1)) {
			return verdictOrphan, status, "the HR end date " + w.TerminationDate + " has passed", nil
		}
	}
	if unknown {
		return verdictKept, status, "no joiner record; the HR record is current: left to the leaver process", nil
	}
	return verdictKept, status, "handed over to steady state", nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// assess judges joiner key and lists what it still holds.
func (r *Reconcile) assess(ctx context.Context, key string, minAge time.Duration) (Orphan, verdict, error) {
	id, err := r.holder(ctx, key)
	if err != nil {
		return Orphan{Key: key, WorkflowID: JoinerWorkflowID(key)}, 0, err
	}
	o := Orphan{Key: key, WorkflowID: id}
	entries, err := r.Directory.ManagedByOwner(ctx, id)
	if err != nil {
		return o, 0, classify(err)
	}
	run := ""
	if len(entries) > 0 {
		run = entries[0].OwnerRun
	}
	// What it holds first: most closed joiners hold nothing (they rolled
	// back or revoked), and for those Temporal and the HRIS need not be
	// asked at all. The judgement follows, before anything is returned as
	// an orphan's.
	now := r.now()
	young := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) < minAge }
	for _, e := range entries {
		// An entry without a creation time is treated as young: its age
		// cannot be proven.
		tooYoung := e.CreatedAt.IsZero() || young(e.CreatedAt)
		groups, err := r.Directory.GroupsOf(ctx, e.DN)
		if err != nil {
			return o, 0, classify(err)
		}
		sort.Strings(groups)
		var items []ReconcileItem
		for _, g := range groups {
			items = append(items, ReconcileItem{Kind: ItemMembership, ID: g, Detail: "member " + e.DN})
		}
		if !e.Disabled {
			items = append(items, ReconcileItem{Kind: ItemEntry, ID: e.DN, Detail: "enabled; disable"})
		}
		if tooYoung {
			o.Young = append(o.Young, items...)
		} else {
			o.Items = append(o.Items, items...)
		}
	}
	path := r.Secrets.JoinerPath(key, secrets.InitialCredentialName)
	md, found, err := r.Secrets.Metadata(ctx, path)
	if err != nil {
		return o, 0, classify(err)
	}
	live, newest, err := r.liveHandovers(ctx, secrets.CredentialLedgerPath(path))
	if err != nil {
		return o, 0, err
	}
	stored := found && slices.ContainsFunc(md.Versions, func(v secrets.VersionMetadata) bool { return !v.Destroyed })
	if stored || len(live) > 0 {
		it := ReconcileItem{Kind: ItemSecret, ID: path, Detail: "destroy" + handoverDetail(live)}
		if stored {
			it.Detail = fmt.Sprintf("%d version(s); %s", len(md.Versions), it.Detail)
		}
		if young(md.CreatedTime) || young(newest) {
			o.Young = append(o.Young, it)
		} else {
			o.Items = append(o.Items, it)
		}
	}
	if it, err := r.appRole(ctx, key); err != nil {
		return o, 0, err
	} else if it != nil {
		o.Items = append(o.Items, *it)
	}
	if len(o.Items) == 0 && len(o.Young) == 0 {
		o.Status, o.Reason = "", "holds nothing"
		return o, verdictOrphan, nil
	}
	v, status, why, err := r.judge(ctx, key, id, run)
	if err != nil {
		return Orphan{Key: key, WorkflowID: id}, 0, err
	}
	o.Status, o.Reason = status, why
	if v != verdictOrphan {
		o.Items, o.Young = nil, nil
		return o, v, nil
	}
	return o, verdictOrphan, nil
}

// liveHandovers returns the wrapping accessors a handover ledger still
// records as live (possibly redeemable by their recipient) and when the
// newest was issued.
func (r *Reconcile) liveHandovers(ctx context.Context, ledger string) ([]string, time.Time, error) {
	recs, err := r.Secrets.Handovers(ctx, ledger)
	if err != nil {
		return nil, time.Time{}, classify(err)
	}
	var live []string
	var newest time.Time
	for _, h := range recs {
		if h.State != secrets.HandoverLive || (!h.ExpiresAt.IsZero() && !r.now().Before(h.ExpiresAt)) {
			continue
		}
		live = append(live, h.WrapAccessor)
		if h.IssuedAt.After(newest) {
			newest = h.IssuedAt
		}
	}
	return live, newest, nil
}

// handoverDetail names the live wrapping accessors (accessors, not tokens:
// they cannot unwrap anything) an item's revocation ends.
func handoverDetail(live []string) string {
	if len(live) == 0 {
		return ""
	}
	return fmt.Sprintf("; end %d unredeemed handover(s) (wrap accessors %s)", len(live), strings.Join(live, ", "))
}

// appRole returns the workload AppRole item of a non-human key, if the role
// exists.
func (r *Reconcile) appRole(ctx context.Context, key string) (*ReconcileItem, error) {
	if !strings.HasPrefix(key, "nhi-") {
		return nil, nil
	}
	role, pol := WorkloadNames(key)
	ok, err := r.Secrets.AppRoleExists(ctx, role)
	if err != nil {
		return nil, classify(err)
	}
	live, _, err := r.liveHandovers(ctx, r.Secrets.WorkloadLedgerPath(role))
	if err != nil {
		return nil, err
	}
	if !ok && len(live) == 0 {
		return nil, nil
	}
	// The role's age is not readable; a role exists only after its
	// joiner's approval and claim, long after its workflow started.
	return &ReconcileItem{Kind: ItemAppRole, ID: role,
		Detail: "AppRole with every SecretID; its tokens disarmed; legacy policy " + pol + " deleted" + handoverDetail(live)}, nil
}

// ReconcileRevokeOrphan revokes what joiner in.Key holds, if no live joiner
// accounts for it: it judges the joiner again and re-reads every holding
// right before acting, and acts only through the marker-asserting,
// idempotent connector operations the joiners' own revocation uses. It
// returns the orphan with each item marked done or with its error; a
// joiner found live (or kept) now returns with no items.
func (r *Reconcile) ReconcileRevokeOrphan(ctx context.Context, in ReconcileRevokeInput) (Orphan, error) {
	if err := r.admitReconciler(ctx, "reconcile-revoke", "revoke what joiner "+in.Key+" holds"); err != nil {
		return Orphan{}, err
	}
	if err := checkKey(in.Key); err != nil {
		return Orphan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidJoiner, nil)
	}
	o, v, err := r.assess(ctx, in.Key, r.minAge(in.MinAge))
	if err != nil {
		return Orphan{}, err
	}
	if v != verdictOrphan {
		o.Items, o.Young = nil, nil
		return o, nil
	}
	id := o.WorkflowID // the holder: the newest generation's markers
	failed := 0
	// Vault first (what a workload can use right now), then memberships,
	// then the credential, then the entry: the joiners' own order.
	order := map[string]int{ItemAppRole: 0, ItemMembership: 1, ItemSecret: 2, ItemEntry: 3}
	sort.SliceStable(o.Items, func(i, j int) bool { return order[o.Items[i].Kind] < order[o.Items[j].Kind] })
	for i := range o.Items {
		it := &o.Items[i]
		heartbeat(ctx, it.Kind, it.ID)
		var err error
		switch it.Kind {
		case ItemAppRole:
			role, pol := WorkloadNames(in.Key)
			if err = r.Secrets.RevokeWorkload(ctx, role); err == nil {
				err = r.Secrets.DeletePolicy(ctx, pol)
			}
		case ItemMembership:
			member := strings.TrimPrefix(it.Detail, "member ")
			err = r.Directory.RemoveMember(ctx, it.ID, member, id)
		case ItemSecret:
			err = r.Secrets.RevokeInitialCredential(ctx, it.ID, "")
		case ItemEntry:
			err = r.Directory.Disable(ctx, it.ID, id)
		}
		if err != nil {
			failed++
			it.Error = rootMsg(classify(err))
			continue
		}
		it.Done = true
		r.log().Info("reconciler revoked an orphan's holding", "key", in.Key, "kind", it.Kind, "id", it.ID, "reason", o.Reason)
	}
	if failed > 0 && failed == len(o.Items) {
		// Nothing went: let Temporal retry the whole (idempotent) revoke.
		return o, fmt.Errorf("reconciler: revoking %s: every step failed, first: %s", in.Key, o.Items[0].Error)
	}
	return o, nil
}

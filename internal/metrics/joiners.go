package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/joinery/joinery/workflows"
)

// Names of the joiner-state gauges.
const (
	JoinersRunning         = "joinery_joiners_running"
	JoinersClosed          = "joinery_joiners_closed"
	ApprovalsWaiting       = "joinery_approvals_waiting"
	ApprovalOldestAge      = "joinery_approval_oldest_age_seconds"
	ApprovalsOverdue       = "joinery_approvals_overdue"
	CompensationsRetrying  = "joinery_compensations_retrying"
	CompensationsStuck     = "joinery_compensations_stuck"
	RevocationsOverdue     = "joinery_revocations_overdue"
	CollectorLastSuccess   = "joinery_state_collector_last_success_timestamp_seconds"
	CollectorErrors        = "joinery_state_collector_errors_total"
	defaultInterval        = 30 * time.Second
	defaultMaxApprovals    = 200
	defaultRevocationGrace = 15 * time.Minute
)

// runningStages are every stage a running joiner can be in; closedStages
// are where a closed joiner ends (its outcome).
var (
	runningStages = []workflows.Stage{
		workflows.StageValidating, workflows.StageWaitingStartDate, workflows.StageAwaitingApproval,
		workflows.StageClaimingUsername, workflows.StageGrantingGroups, workflows.StageIssuingSecret,
		workflows.StageWritingBack, workflows.StageProvisioned, workflows.StageActive, workflows.StageRevoking,
		workflows.StageRollingBack, workflows.StageCompensationStuck,
	}
	closedStages = []workflows.Stage{
		workflows.StageCompleted, workflows.StageRejected, workflows.StageRescinded, workflows.StageExpired,
		workflows.StageRevoked, workflows.StageFailed, workflows.StageCompensationFailed,
		workflows.StageNeedsOperator, workflows.StageAlreadyProvisioned,
	}
)

// Visibility is what the collector needs of the Temporal client.
type Visibility interface {
	CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error)
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...interface{}) (converter.EncodedValue, error)
}

// JoinerState exports gauges of joiner state computed from Temporal
// visibility: joiners by stage (running) and by final stage (closed, within
// the namespace's retention), approvals waiting and the age of the oldest,
// approvals past their route's timeout, compensations in progress and
// stuck, and time-bound access past its end date that is still not
// revoked.
//
// Workflow code cannot emit such gauges deterministically (a replayed
// workflow would set them again from old state), so they are read from the
// search attributes the workflows already upsert (JoinerStage,
// JoinerExpiry), on an interval by Run. A scrape answers from the last
// snapshot: scraping often costs Temporal nothing.
//
// Only joiners on TaskQueue count, so two deployments (or tests) on one
// namespace do not see each other's joiners, and every joiner it queries
// has a worker to answer.
type JoinerState struct {
	Client    Visibility
	Namespace string
	TaskQueue string
	// Interval between refreshes (default 30s).
	Interval time.Duration
	// MaxApprovals bounds how many waiting approvals one refresh asks for
	// their status (oldest first; default 200). The count is exact either
	// way; the age and the overdue count cover the oldest MaxApprovals.
	MaxApprovals int
	// RevocationGrace is how long past its end date time-bound access may
	// take to be revoked before it counts as overdue (default 15m).
	RevocationGrace time.Duration
	Now             func() time.Time
	Logger          *slog.Logger

	mu     sync.Mutex
	snap   *snapshot
	errs   prometheus.Counter
	descs  map[string]*prometheus.Desc
	inited sync.Once
}

type snapshot struct {
	running, closed              map[workflows.Stage]int64
	waiting, overdue, revOverdue int64
	oldestAge                    float64
	at                           time.Time
}

func (j *JoinerState) init() {
	j.inited.Do(func() {
		j.errs = prometheus.NewCounter(prometheus.CounterOpts{Name: CollectorErrors,
			Help: "Visibility reads or status queries of the joiner-state collector that failed."})
		d := func(name, help string, labels ...string) *prometheus.Desc {
			return prometheus.NewDesc(name, help, labels, nil)
		}
		j.descs = map[string]*prometheus.Desc{
			JoinersRunning:        d(JoinersRunning, "Running joiners by JoinerStage.", "stage"),
			JoinersClosed:         d(JoinersClosed, "Closed joiners still in visibility (the namespace's retention) by final JoinerStage, i.e. outcome.", "stage"),
			ApprovalsWaiting:      d(ApprovalsWaiting, "Joiners in AwaitingApproval."),
			ApprovalOldestAge:     d(ApprovalOldestAge, "Seconds the oldest waiting approval has waited since it was asked (0 when none waits)."),
			ApprovalsOverdue:      d(ApprovalsOverdue, "Waiting approvals older than their route's approval timeout: the timeout should have rejected them, so their worker is not running them."),
			CompensationsRetrying: d(CompensationsRetrying, "Joiners rolling back or revoking (each undo step retried until it succeeds)."),
			CompensationsStuck:    d(CompensationsStuck, "Joiners in CompensationStuck: an undo step has failed longer than the policy's compensation_stuck_after."),
			RevocationsOverdue:    d(RevocationsOverdue, "Time-bound joiners still running past JoinerExpiry plus the revocation grace: access that should have ended."),
			CollectorLastSuccess:  d(CollectorLastSuccess, "Unix time of the last complete refresh of the joiner-state gauges."),
		}
	})
}

func (j *JoinerState) logger() *slog.Logger {
	if j.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Logger
}

func (j *JoinerState) now() time.Time {
	if j.Now == nil {
		return time.Now()
	}
	return j.Now()
}

// Describe implements prometheus.Collector.
func (j *JoinerState) Describe(ch chan<- *prometheus.Desc) {
	j.init()
	for _, d := range j.descs {
		ch <- d
	}
	j.errs.Describe(ch)
}

// Collect implements prometheus.Collector: the last snapshot. Before the
// first refresh only the error counter and a zero last-success time are
// exported, so "no data yet" is not mistaken for "no joiners".
func (j *JoinerState) Collect(ch chan<- prometheus.Metric) {
	j.init()
	j.errs.Collect(ch)
	j.mu.Lock()
	s := j.snap
	j.mu.Unlock()
	g := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(j.descs[name], prometheus.GaugeValue, v, labels...)
	}
	if s == nil {
		g(CollectorLastSuccess, 0)
		return
	}
	for _, st := range runningStages {
		g(JoinersRunning, float64(s.running[st]), string(st))
	}
	for _, st := range closedStages {
		g(JoinersClosed, float64(s.closed[st]), string(st))
	}
	g(ApprovalsWaiting, float64(s.waiting))
	g(ApprovalOldestAge, s.oldestAge)
	g(ApprovalsOverdue, float64(s.overdue))
	g(CompensationsRetrying, float64(s.running[workflows.StageRollingBack]+s.running[workflows.StageRevoking]))
	g(CompensationsStuck, float64(s.running[workflows.StageCompensationStuck]))
	g(RevocationsOverdue, float64(s.revOverdue))
	g(CollectorLastSuccess, float64(s.at.Unix()))
}

// Run refreshes the snapshot now and then every Interval until ctx ends.
// A failed refresh keeps the previous snapshot (and its last-success
// time, which the alerts watch) and counts an error.
func (j *JoinerState) Run(ctx context.Context) {
	iv := j.Interval
	if iv <= 0 {
		iv = defaultInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if err := j.Refresh(ctx); err != nil && ctx.Err() == nil {
			j.logger().Warn("joiner-state metrics: refresh failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// base is the visibility query every read starts from.
func (j *JoinerState) base() (string, error) {
	if j.TaskQueue == "" || strings.ContainsAny(j.TaskQueue, `'"\`) {
		return "", fmt.Errorf("metrics: task queue %q cannot be used in a visibility query", j.TaskQueue)
	}
	return fmt.Sprintf("WorkflowType = 'Joiner' AND TaskQueue = '%s'", j.TaskQueue), nil
}

func (j *JoinerState) count(ctx context.Context, q string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := j.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: j.Namespace, Query: q})
	if err != nil {
		j.errs.Inc()
		return 0, err
	}
	return r.GetCount(), nil
}

// Refresh reads visibility once and replaces the snapshot.
func (j *JoinerState) Refresh(ctx context.Context) error {
	j.init()
	base, err := j.base()
	if err != nil {
		return err
	}
	now := j.now()
	s := &snapshot{running: map[workflows.Stage]int64{}, closed: map[workflows.Stage]int64{}, at: now}
	for _, st := range runningStages {
		n, err := j.count(ctx, fmt.Sprintf("%s AND ExecutionStatus = 'Running' AND JoinerStage = '%s'", base, st))
		if err != nil {
			return fmt.Errorf("count running %s: %w", st, err)
		}
		s.running[st] = n
	}
	for _, st := range closedStages {
		n, err := j.count(ctx, fmt.Sprintf("%s AND ExecutionStatus != 'Running' AND JoinerStage = '%s'", base, st))
		if err != nil {
			return fmt.Errorf("count closed %s: %w", st, err)
		}
		s.closed[st] = n
	}
	grace := j.RevocationGrace
	if grace <= 0 {
		grace = defaultRevocationGrace
	}
	s.revOverdue, err = j.count(ctx, fmt.Sprintf("%s AND ExecutionStatus = 'Running' AND JoinerExpiry < '%s'",
		base, now.Add(-grace).UTC().Format(time.RFC3339)))
	if err != nil {
		return fmt.Errorf("count overdue revocations: %w", err)
	}
	s.waiting = s.running[workflows.StageAwaitingApproval]
	if s.waiting > 0 {
		if err := j.approvals(ctx, base, now, s); err != nil {
			return err
		}
	}
	j.mu.Lock()
	j.snap = s
	j.mu.Unlock()
	return nil
}

// approvals lists the waiting joiners and asks the oldest for their
// status: an approval is asked when the joiner reaches its provisioning
// date (ProvisionAt) or at its start if that date had passed, and each
// route has its own timeout (Plan.Approval.Timeout).
func (j *JoinerState) approvals(ctx context.Context, base string, now time.Time, s *snapshot) error {
	type waiting struct {
		id, run string
		start   time.Time
	}
	var list []waiting
	q := base + fmt.Sprintf(" AND ExecutionStatus = 'Running' AND JoinerStage = '%s'", workflows.StageAwaitingApproval)
	var token []byte
	// Listing is bounded too: ten pages of a thousand.
	for page := 0; page < 10; page++ {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := j.Client.ListWorkflow(lctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: j.Namespace, Query: q, PageSize: 1000, NextPageToken: token})
		cancel()
		if err != nil {
			j.errs.Inc()
			return fmt.Errorf("list waiting approvals: %w", err)
		}
		for _, e := range r.GetExecutions() {
			list = append(list, waiting{id: e.GetExecution().GetWorkflowId(), run: e.GetExecution().GetRunId(), start: e.GetStartTime().AsTime()})
		}
		if token = r.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortFunc(list, func(a, b waiting) int { return a.start.Compare(b.start) })
	max := j.MaxApprovals
	if max <= 0 {
		max = defaultMaxApprovals
	}
	for i, w := range list {
		asked, timeout := w.start, time.Duration(0)
		if i < max {
			if st, err := j.status(ctx, w.id, w.run); err == nil {
				if st.ProvisionAt != nil && st.ProvisionAt.After(asked) {
					asked = *st.ProvisionAt
				}
				if st.Plan != nil {
					timeout = st.Plan.Approval.Timeout
				}
			}
		}
		age := now.Sub(asked).Seconds()
		if age > s.oldestAge {
			s.oldestAge = age
		}
		if timeout > 0 && now.Sub(asked) > timeout {
			s.overdue++
		}
	}
	return nil
}

func (j *JoinerState) status(ctx context.Context, id, run string) (workflows.Status, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var st workflows.Status
	v, err := j.Client.QueryWorkflow(qctx, id, run, workflows.QueryStatus)
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		j.errs.Inc()
		j.logger().Debug("joiner-state metrics: status query failed", "workflow", id, "error", err.Error())
	}
	return st, err
}

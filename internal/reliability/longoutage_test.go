//go:build reliability

package reliability

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Outages longer than a step's retry window (issue 10, item 8).
//
// The 30 s outages of scenarios_test.go end inside every step's retry
// window, so the joiners just carry on. Here the server stays away for longer
// than the window of the step that needs it (workflows/options.go:
// ScheduleToCloseTimeout 30 min for the directory steps and for the
// credential step), so that step must give up, and the joiner must roll back
// what it already created. Its compensations need the same server: they
// must keep retrying through the rest of the outage (never give up, never
// close the joiner with something left), and once the server is back every
// joiner must close as Failed with nothing left on any server.
//
// The adversary is not a person but time: a server that is down for longer
// than anybody planned. What it could make Joinery do wrong: close a joiner
// whose entry, membership or secret still exists (an orphaned account), give
// up a compensation after its short retry policy, or hang in RollingBack
// after the server came back. The assertions below look for each.

// longOutageCase is one server taken away for longer than a step's window.
type longOutageCase struct {
	// server names it in the row; via is its proxy.
	server string
	via    func(*Stack) *Proxy
	// step is the step whose window the outage outlasts (for the row).
	step string
	// window is that step's ScheduleToCloseTimeout (workflows/options.go;
	// unexported there, so repeated here: a change there must change this).
	window time.Duration
	// stage is the step's stage, where a joiner waits on the server.
	stage workflows.Stage
	// beforeApproval takes the server down before the approvals: nothing a
	// joiner does before the step needs it (Vault). Otherwise (LDAP, which
	// the approval's live standing check needs) it goes down right after
	// every joiner is approved, on the answer to the first add of a
	// joiner's entry: that entry exists, and the worker never learns it.
	beforeApproval bool
	// failing: the joiner's step in flight when the outage hit is one of
	// these activities, and it must fail at its window while the server is
	// still down.
	failing []string
	// undo: the compensations that need the server. The first one a
	// joiner runs after its step failed must have been scheduled while the
	// server was down and completed only after it came back (retried
	// through the outage); every one it ran must end completed.
	undo []string
}

var (
	ldapLongOutage = longOutageCase{server: "LDAP", via: viaLDAP, step: "the directory steps'", window: 30 * time.Minute,
		failing: []string{"ClaimAccount", "GrantGroup", "IssueCredential"}, undo: []string{"DeleteAccount", "RevokeGroup"}}
	vaultLongOutage = longOutageCase{server: "Vault", via: viaVault, step: "the credential step's", window: 30 * time.Minute,
		stage: workflows.StageIssuingSecret, beforeApproval: true, failing: []string{"IssueCredential"}, undo: []string{"RevokeCredential"}}
)

// flagLongOutageCap cuts the outage short (0: the step's window plus ten
// minutes at most). Only for trying the scenario's own mechanics in a few
// minutes: with a cap below the window the steps do not fail and the
// scenario reports it.
var flagLongOutageCap = flag.Duration("long-outage-cap", 0, "debug: end the long outages after this long (0: window + 10 min)")

// longOutageMargin is how long the server stays down after every joiner
// has started its rollback: the compensations must keep failing and
// retrying for that long without the joiner closing.
const longOutageMargin = 3 * time.Minute

// longOutage runs c with n joiners.
func longOutage(c longOutageCase, n int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		p := c.via(su.S)
		js := su.hireAndStart(ctx, "long"+c.server, n)
		tr := newStageTracker(su, js)
		tctx, stopTracking := context.WithCancel(ctx)
		var twg sync.WaitGroup
		twg.Add(1)
		go func() { defer twg.Done(); tr.run(tctx) }()
		defer func() { stopTracking(); twg.Wait() }()

		var downAt time.Time
		if c.beforeApproval {
			p.SetDown(true)
			downAt = time.Now()
			tr.mark(downAt, c.server+" down")
			su.approveAll(ctx, js)
			// Claimed and granted; now waiting on the server.
			if c.stage != "" {
				wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
				for _, s := range su.D.WaitAll(wctx, ids(js), c.stage) {
					if s.Stage != c.stage {
						su.t.Errorf("joiner %s never reached %s (%s, %v)", s.ID, c.stage, s.Stage, s.Err)
					}
				}
				cancel()
			}
		} else {
			downAt = su.downAfterApproval(ctx, p, js)
			tr.mark(downAt, c.server+" down")
		}
		// Make sure the server really comes back, whatever fails below.
		defer p.SetDown(false)

		// What exists while the server is down is what the rollbacks must
		// undo once it is back (the auditor goes to the servers directly,
		// never through the proxy).
		if rep, err := su.A.Audit(ctx, allGone(js)); err == nil {
			su.t.Logf("%s down: on the servers now (the rollbacks' work): %d findings; %d entries, %d memberships, %d secrets",
				c.server, len(rep.Findings), rep.Entries, rep.Memberships, rep.Secrets)
			for _, f := range rep.Findings {
				su.t.Logf("  %s", f)
			}
		} else {
			su.t.Logf("audit while %s is down: %v", c.server, err)
		}

		// Down until every joiner's step has given up and its rollback
		// has started, then the margin; no joiner may close meanwhile.
		deadline := downAt.Add(c.window + 10*time.Minute)
		if *flagLongOutageCap > 0 {
			deadline = downAt.Add(*flagLongOutageCap)
		}
		rolling := map[workflows.Stage]bool{workflows.StageRollingBack: true, workflows.StageCompensationStuck: true}
		closedWhileDown := map[string]bool{}
		waitDown := func(until time.Time, done func(map[string]Settled) bool) map[string]Settled {
			for {
				now := map[string]Settled{}
				for _, j := range js {
					now[j.ID] = su.D.describe(ctx, j.ID)
					if s := now[j.ID]; s.Err == nil && s.Closed() && !closedWhileDown[j.ID] {
						closedWhileDown[j.ID] = true
						su.t.Errorf("joiner %s closed (%s, %s) while %s was still down: its compensations cannot have succeeded",
							j.ID, s.Stage, s.Status, c.server)
					}
				}
				if (done != nil && done(now)) || !time.Now().Before(until) {
					return now
				}
				time.Sleep(5 * time.Second)
			}
		}
		last := waitDown(deadline, func(m map[string]Settled) bool {
			for _, s := range m {
				if s.Err != nil || !(rolling[s.Stage] || s.Closed()) {
					return false
				}
			}
			return true
		})
		for id, s := range last {
			if !rolling[s.Stage] && !s.Closed() {
				su.t.Errorf("joiner %s is %s %s after %s of %s outage: its step did not give up at its %s window",
					id, s.Stage, s.Status, time.Since(downAt).Round(time.Second), c.server, c.window)
			}
		}
		allRolling := time.Now()
		su.t.Logf("%s down %s: every joiner's step given up, rollback under way; down %s more", c.server,
			allRolling.Sub(downAt).Round(time.Second), longOutageMargin)
		if *flagLongOutageCap == 0 {
			waitDown(allRolling.Add(longOutageMargin), nil)
		}
		p.SetDown(false)
		upAt := time.Now()
		tr.mark(upAt, c.server+" back")
		su.t.Logf("%s back after %s down: %d connections refused, %d dropped", c.server,
			upAt.Sub(downAt).Round(time.Second), p.Stats().Refused, p.Stats().Dropped)

		fault := fmt.Sprintf("%s outage longer than %s retry window (%s): down %s, %d joiners provisioning",
			c.server, c.step, c.window, upAt.Sub(downAt).Round(time.Minute), n)
		su.settleClosed(ctx, fault, js, allGone(js))
		stopTracking()
		twg.Wait()

		// What each joiner did, from its own history and status.
		for _, j := range js {
			su.checkLongOutageJoiner(ctx, c, j, downAt, upAt, tr.timeline(j.ID))
		}
	}
}

// downAfterApproval approves every joiner with LDAP slowed down (1 s per
// request, so a claim cannot finish in the moment between the last
// approval and the outage), waits until no joiner is still in approval
// (the approval's standing check needs LDAP: a joiner caught there would
// only wait), then takes LDAP down on the answer to the first add of a
// joiner's entry. If no add comes within 20 s (every claim already past it)
// LDAP goes down anyway. It returns when the outage began.
func (su *Suite) downAfterApproval(ctx context.Context, p *Proxy, js []joiner) time.Time {
	su.t.Helper()
	p.SetLatency(time.Second)
	defer p.SetLatency(0)
	su.approveAll(ctx, js)
	pre := map[workflows.Stage]bool{"": true, workflows.StageValidating: true, workflows.StageWaitingStartDate: true,
		workflows.StageAwaitingApproval: true}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for wctx.Err() == nil {
		waiting := 0
		for _, j := range js {
			if s := su.D.describe(wctx, j.ID); s.Err != nil || pre[s.Stage] {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	adds := make([]func(Request) bool, len(js))
	for i, j := range js {
		adds[i] = ldapAddOf(j)
	}
	t := p.Arm("long outage: LDAP down on the first entry add", func(r Request) bool {
		for _, m := range adds {
			if m(r) {
				return true
			}
		}
		return false
	}, func() { p.SetDown(true) })
	defer p.Disarm()
	select {
	case <-t.Fired():
		su.t.Logf("LDAP down on the answer to %s %s (the entry exists; the worker never heard)", t.Request.Op, t.Request.Target)
		return t.At
	case <-time.After(20 * time.Second):
		p.SetDown(true)
		su.t.Logf("no entry add within 20 s of the approvals; LDAP down anyway")
		return time.Now()
	}
}

func ids(js []joiner) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

func allGone(js []joiner) map[string]Expect {
	m := map[string]Expect{}
	for _, j := range js {
		m[j.ID] = Gone
	}
	return m
}

// checkLongOutageJoiner reads one joiner's history and status and checks
// the story the outage must have produced: the step in flight failed at its
// window while the server was down, the compensations that need the server
// were retried through the outage and succeeded after it, and the joiner
// closed as Failed with every resource undone.
func (su *Suite) checkLongOutageJoiner(ctx context.Context, c longOutageCase, j joiner, downAt, upAt time.Time, stages string) {
	su.t.Helper()
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "T" + signed(t.Sub(downAt).Round(time.Second))
	}
	acts, err := su.activityRuns(ctx, j.ID)
	if err != nil {
		su.t.Errorf("joiner %s: history: %v", j.ID, err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "joiner %s (T = %s down at %s, back at %s)\n  stages: %s\n", j.ID, c.server,
		downAt.UTC().Format(time.TimeOnly), rel(upAt), stages)
	var failed *actRun
	for i := range acts {
		a := &acts[i]
		if a.Scheduled.Before(downAt.Add(-time.Minute)) {
			continue // planning and approval, long before
		}
		fmt.Fprintf(&b, "  %-18s scheduled %s, %s %s (attempt %d, %s after scheduling)%s\n", a.Type, rel(a.Scheduled), a.End,
			rel(a.Ended), a.Attempt, a.Ended.Sub(a.Scheduled).Round(time.Second), orEmpty(" ", a.Timeout))
		if failed == nil && a.End != "completed" && slices.Contains(c.failing, a.Type) {
			failed = a
		}
	}
	// The compensations that need the server, after the step failed: the
	// first must span the server's return; the last of each type must
	// have completed (earlier rounds may have failed).
	var first *actRun
	lastOf := map[string]*actRun{}
	if failed != nil {
		for i := range acts {
			a := &acts[i]
			if a.Scheduled.Before(failed.Ended) || !slices.Contains(c.undo, a.Type) {
				continue
			}
			if first == nil {
				first = a
			}
			lastOf[a.Type] = a
		}
	}
	st, res, es, serr := run.Status(ctx, su.D.C, j.ID)
	if res != nil {
		fmt.Fprintf(&b, "  closed %s as %s (outcome %s); undone: %s\n  why: %s\n", es, res.Stage, res.Outcome,
			strings.Join(res.Undone, ", "), res.Error)
	} else {
		fmt.Fprintf(&b, "  status: %s %s (%v)\n", st.Stage, es, serr)
	}
	for _, r := range st.Resources {
		fmt.Fprintf(&b, "  resource %s %s: undone %v%s\n", r.Kind, r.ID, r.UndoneAt != nil, orEmpty(" error ", r.UndoError))
	}
	for _, e := range st.Events {
		if !e.At.Before(downAt.Add(-time.Minute)) {
			fmt.Fprintf(&b, "  event %s: %s\n", rel(e.At), e.What)
		}
	}
	su.t.Log(b.String())

	switch {
	case failed == nil:
		su.t.Errorf("joiner %s: none of %v failed: the outage did not hit the step it was aimed at", j.ID, c.failing)
	case failed.Ended.After(upAt):
		su.t.Errorf("joiner %s: %s ended at %s, after %s came back", j.ID, failed.Type, rel(failed.Ended), c.server)
	case failed.Ended.Sub(failed.Scheduled) < c.window-time.Minute:
		// Temporal may end the step up to one retry interval (30 s) early,
		// when the next attempt would start past the window.
		su.t.Errorf("joiner %s: %s gave up %s after it was scheduled, before its %s window", j.ID, failed.Type,
			failed.Ended.Sub(failed.Scheduled).Round(time.Second), c.window)
	}
	switch {
	case failed == nil:
	case first == nil:
		su.t.Errorf("joiner %s: none of the compensations %v ran after %s failed", j.ID, c.undo, failed.Type)
	case !first.Scheduled.Before(upAt) || (first.End == "completed" && !first.Ended.After(upAt)):
		su.t.Errorf("joiner %s: compensation %s (scheduled %s, %s %s) did not retry through the outage", j.ID, first.Type,
			rel(first.Scheduled), first.End, rel(first.Ended))
	}
	for typ, a := range lastOf {
		if a.End != "completed" {
			su.t.Errorf("joiner %s: compensation %s ended %s at %s", j.ID, typ, a.End, rel(a.Ended))
		}
	}
	if res == nil || res.Stage != workflows.StageFailed {
		su.t.Errorf("joiner %s: wanted closed as %s, got %+v (%v)", j.ID, workflows.StageFailed, res, serr)
	}
	for _, r := range st.Resources {
		if r.UndoneAt == nil {
			su.t.Errorf("joiner %s: resource %s %s not undone (%s)", j.ID, r.Kind, r.ID, r.UndoError)
		}
	}
}

func signed(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// orEmpty returns prefix+s, or "" when s is empty.
func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// actRun is one activity of a history: when it was scheduled, how it ended
// and on which attempt (Temporal records only the last attempt's start, so
// Attempt counts the retries).
type actRun struct {
	Type             string
	Scheduled, Ended time.Time
	End              string // completed, failed, timed out, canceled, open
	Attempt          int32
	Timeout          string // the timeout type, for a timed-out activity
}

// activityRuns lists the joiner's activities in the order scheduled.
func (su *Suite) activityRuns(ctx context.Context, id string) ([]actRun, error) {
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	it := su.D.C.GetWorkflowHistory(hctx, run.ResolveID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	byID := map[int64]*actRun{}
	var order []int64
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		at := ev.GetEventTime().AsTime()
		end := func(sched int64, how string) *actRun {
			a := byID[sched]
			if a != nil {
				a.End, a.Ended = how, at
			}
			return a
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			byID[ev.GetEventId()] = &actRun{Type: ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), Scheduled: at, End: "open"}
			order = append(order, ev.GetEventId())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := byID[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()]; a != nil {
				a.Attempt = ev.GetActivityTaskStartedEventAttributes().GetAttempt()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			end(ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId(), "completed")
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			end(ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId(), "failed")
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			attrs := ev.GetActivityTaskTimedOutEventAttributes()
			if a := end(attrs.GetScheduledEventId(), "timed out"); a != nil {
				a.Timeout = attrs.GetFailure().GetTimeoutFailureInfo().GetTimeoutType().String()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			end(ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId(), "canceled")
		}
	}
	out := make([]actRun, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, nil
}

// stageTracker polls the joiners' JoinerStage search attribute (Describe,
// no worker needed) and keeps each joiner's stage changes with their
// times, plus the suite's own marks (server down, back).
type stageTracker struct {
	su *Suite
	js []joiner

	mu    sync.Mutex
	seen  map[string][]stageAt
	marks []stageAt
	t0    time.Time
}

type stageAt struct {
	At    time.Time
	Stage string
}

func newStageTracker(su *Suite, js []joiner) *stageTracker {
	return &stageTracker{su: su, js: js, seen: map[string][]stageAt{}, t0: time.Now()}
}

func (t *stageTracker) run(ctx context.Context) {
	for {
		t.poll(ctx)
		select {
		case <-ctx.Done():
			// Once more after the stop, so the last change (the close
			// that ended the wait) is on the timeline.
			t.poll(context.Background())
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (t *stageTracker) poll(ctx context.Context) {
	for _, j := range t.js {
		s := t.su.D.describe(ctx, j.ID)
		if s.Err != nil {
			continue
		}
		stage := string(s.Stage)
		if s.Closed() {
			stage += " (" + strings.TrimPrefix(s.Status.String(), "WORKFLOW_EXECUTION_STATUS_") + ")"
		}
		t.mu.Lock()
		h := t.seen[j.ID]
		if len(h) == 0 || h[len(h)-1].Stage != stage {
			t.seen[j.ID] = append(h, stageAt{At: time.Now(), Stage: stage})
		}
		t.mu.Unlock()
	}
}

// mark records a suite event (server down, back) on every timeline.
func (t *stageTracker) mark(at time.Time, what string) {
	t.mu.Lock()
	t.marks = append(t.marks, stageAt{At: at, Stage: "[" + what + "]"})
	t.mu.Unlock()
}

// timeline renders a joiner's stages and the marks in time order, relative
// to the first mark (the outage's start).
func (t *stageTracker) timeline(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := append(append([]stageAt{}, t.seen[id]...), t.marks...)
	sort.SliceStable(all, func(a, b int) bool { return all[a].At.Before(all[b].At) })
	ref := t.t0
	if len(t.marks) > 0 {
		ref = t.marks[0].At
	}
	parts := make([]string, len(all))
	for i, s := range all {
		parts[i] = fmt.Sprintf("%s T%s", s.Stage, signed(s.At.Sub(ref).Round(time.Second)))
	}
	return strings.Join(parts, " → ")
}

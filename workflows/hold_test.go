package workflows

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

var holdLimits = HoldLimits{Window: time.Hour, MaxStarts: 2, MaxRescinds: 1, MaxHeld: 5}

func startItem(id string) HoldItem {
	return HoldItem{Action: HoldStart, HRISID: id, Input: &JoinerInput{HRISID: id, Kind: "employee", Source: "bulk"}, Source: "bulk"}
}

func rescindItem(id string) HoldItem {
	return HoldItem{Action: HoldRescind, HRISID: id, Rescind: &RescindSignal{By: "hris-webhook", Reason: "terminated"}, Source: "webhook"}
}

// holdRun drives the hold workflow: each step runs one second (or a
// given time) of simulated time after the previous one, so that the update
// it sends has been handled before the next step looks at the result.
type holdRun struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	at  time.Duration
	n   int
}

func newHoldRun(t *testing.T) *holdRun {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	return &holdRun{t: t, env: env}
}

// after runs fn d of simulated time after the previous step.
func (r *holdRun) after(d time.Duration, fn func()) {
	r.at += d
	r.env.RegisterDelayedCallback(fn, r.at)
}

// step runs fn one second after the previous step.
func (r *holdRun) step(fn func()) { r.after(time.Second, fn) }

// result is what one update answered.
type result struct {
	adm      Admission
	items    []HoldItem
	rejected error
	done     bool
}

// update sends an update in its own step; res is filled once it is handled.
func (r *holdRun) update(name string, arg any) *result {
	res := &result{}
	r.step(func() {
		r.n++
		r.env.UpdateWorkflow(name, fmt.Sprint("u", r.n), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { res.rejected, res.done = err, true },
			OnComplete: func(v any, err error) {
				require.NoError(r.t, err)
				switch o := v.(type) {
				case Admission:
					res.adm = o
				case []HoldItem:
					res.items = o
				}
				res.done = true
			},
		}, arg)
	})
	return res
}

func (r *holdRun) admit(it HoldItem) *result {
	return r.update(UpdateHoldAdmit, AdmitRequest{Item: it, Limits: holdLimits})
}

// check runs fn in its own step, after every update before it.
func (r *holdRun) check(fn func()) { r.step(fn) }

func (r *holdRun) view() HoldView {
	v, err := r.env.QueryWorkflow(QueryHold)
	require.NoError(r.t, err)
	var hv HoldView
	require.NoError(r.t, v.Get(&hv))
	return hv
}

func (r *holdRun) run() {
	r.step(r.env.CancelWorkflow)
	r.env.ExecuteWorkflow(Hold, HoldState{})
	require.True(r.t, r.env.IsWorkflowCompleted())
}

func TestHoldAdmitsUpToTheLimitThenHoldsTheRest(t *testing.T) {
	r := newHoldRun(t)
	a1, a2, a3 := r.admit(startItem("1")), r.admit(startItem("2")), r.admit(startItem("3"))
	// A repeated delivery of a held hire collapses onto it.
	dup := r.admit(startItem("3"))
	// Rescinds have their own window.
	r9, r8 := r.admit(rescindItem("9")), r.admit(rescindItem("8"))
	r.check(func() {
		require.True(t, a1.adm.Admitted)
		require.True(t, a2.adm.Admitted)
		require.True(t, a3.adm.Held)
		require.Contains(t, a3.adm.Reason, "more than 2 starts within 1h0m0s")
		require.Equal(t, 2, a3.adm.InWindow)
		require.True(t, dup.adm.Held && dup.adm.AlreadyHeld)
		require.True(t, r9.adm.Admitted)
		require.True(t, r8.adm.Held)
	})
	// The window slides, but starts stay held while others wait: a burst is
	// stopped whole, not let trickle through.
	r.after(2*time.Hour, func() {})
	a4 := r.admit(startItem("4"))
	r.check(func() {
		require.True(t, a4.adm.Held)
		require.Equal(t, 0, a4.adm.InWindow)
		require.Equal(t, 2, a4.adm.Queued)
		v := r.view()
		require.Equal(t, 0, v.StartsInWindow)
		require.Len(t, v.Held, 3)
		require.Equal(t, "start:3", v.Held[0].Key())
		require.Equal(t, t0.Add(3*time.Second), v.Held[0].HeldAt, "held at the time of the burst")
	})
	rel := r.update(UpdateHoldRelease, HoldDecision{Keys: []string{"start:3", "start:4"}, By: "ops.alice",
		Outcomes: map[string]string{"start:3": "started"}})
	// Releasing again finds nothing: a second release starts nothing new.
	rel2 := r.update(UpdateHoldRelease, HoldDecision{Keys: []string{"start:3"}, By: "ops.alice"})
	// Nothing queued any more, and the window is empty: starts flow again.
	a5 := r.admit(startItem("5"))
	dis := r.update(UpdateHoldDiscard, HoldDecision{All: true, By: "ops.bob", Reason: "bad HR import"})
	r.check(func() {
		require.Len(t, rel.items, 2)
		require.Empty(t, rel2.items)
		require.True(t, a5.adm.Admitted)
		require.Len(t, dis.items, 1)
		require.Equal(t, "rescind:8", dis.items[0].Key())
		v := r.view()
		require.Empty(t, v.Held)
		require.Len(t, v.Log, 2)
		require.Equal(t, "released", v.Log[0].Decision)
		require.Equal(t, "ops.alice", v.Log[0].By)
		require.Equal(t, 2, v.Log[0].Count)
		require.Equal(t, []string{"start:3 (started)", "start:4"}, v.Log[0].Keys)
		require.Equal(t, "discarded", v.Log[1].Decision)
		require.Equal(t, "ops.bob", v.Log[1].By)
		require.Equal(t, "bad HR import", v.Log[1].Reason)
	})
	r.run()
}

func TestHoldIsBounded(t *testing.T) {
	r := newHoldRun(t)
	zero := HoldLimits{Window: time.Hour, MaxStarts: 0, MaxRescinds: 0, MaxHeld: 2}
	h1 := r.update(UpdateHoldAdmit, AdmitRequest{Item: startItem("1"), Limits: zero})
	h2 := r.update(UpdateHoldAdmit, AdmitRequest{Item: startItem("2"), Limits: zero})
	full := r.update(UpdateHoldAdmit, AdmitRequest{Item: startItem("3"), Limits: zero})
	// A held key is still answered (it collapses), full or not.
	again := r.update(UpdateHoldAdmit, AdmitRequest{Item: startItem("2"), Limits: zero})
	// Malformed requests and anonymous decisions are refused.
	bad := []*result{
		r.update(UpdateHoldAdmit, AdmitRequest{Item: HoldItem{Action: "delete", HRISID: "1"}, Limits: zero}),
		r.update(UpdateHoldAdmit, AdmitRequest{Item: HoldItem{Action: HoldStart, HRISID: "1"}, Limits: zero}),
		r.update(UpdateHoldDiscard, HoldDecision{All: true}),
		r.update(UpdateHoldRelease, HoldDecision{By: "x"}),
	}
	r.check(func() {
		require.True(t, h1.adm.Held, "max_starts 0 holds every start")
		require.True(t, h2.adm.Held)
		require.ErrorContains(t, full.rejected, "the hold is full")
		require.NoError(t, again.rejected)
		require.True(t, again.adm.AlreadyHeld)
		for i, b := range bad {
			require.True(t, b.done, i)
			require.Error(t, b.rejected, i)
		}
		require.Len(t, r.view().Held, 2)
	})
	r.run()
}

func TestHoldLogIsBounded(t *testing.T) {
	h := &hold{}
	for i := range holdLogSize + 10 {
		id := fmt.Sprint(i + 1)
		h.admit(t0, AdmitRequest{Item: startItem(id), Limits: HoldLimits{Window: time.Hour}})
		h.letGo(t0, "discarded", HoldDecision{Keys: []string{"start:" + id}, By: "ops"})
	}
	require.Len(t, h.st.Log, holdLogSize)
	require.Equal(t, []string{"start:11"}, h.st.Log[0].Keys)
	require.Empty(t, h.st.Held)
}

func TestHoldContinuesAsNewWithItsState(t *testing.T) {
	defer func(n int) { holdUpdatesPerRun = n }(holdUpdatesPerRun)
	holdUpdatesPerRun = 3
	r := newHoldRun(t)
	r.admit(startItem("1"))
	r.admit(startItem("2"))
	r.admit(startItem("3"))
	r.env.ExecuteWorkflow(Hold, HoldState{})
	require.True(t, r.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, r.env.GetWorkflowError(), &can)
	var next HoldState
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Len(t, next.Starts, 2, "the window travels to the next run")
	require.Len(t, next.Held, 1, "and so does the queue")
}

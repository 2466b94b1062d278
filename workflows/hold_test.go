package workflows

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
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
	r := newHoldRun(t)
	r.admit(startItem("1"))
	r.admit(startItem("2"))
	r.admit(startItem("3"))
	r.env.ExecuteWorkflow(Hold, HoldState{UpdatesPerRun: 3})
	require.True(t, r.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, r.env.GetWorkflowError(), &can)
	var next HoldState
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Len(t, next.Starts, 2, "the window travels to the next run")
	require.Len(t, next.Held, 1, "and so does the queue")
	require.Equal(t, 3, next.UpdatesPerRun, "and the run length")
}

// The run length comes from the state, within bounds: an input asking for
// a longer run (a bigger history) gets the default's 1,000.
func TestHoldUpdatesPerRunIsBounded(t *testing.T) {
	for in, want := range map[int]int{0: 1000, -5: 1000, 1: 1, 3: 3, 1000: 1000, 1_000_000: 1000} {
		require.Equal(t, want, (&hold{st: HoldState{UpdatesPerRun: in}}).updatesPerRun(), in)
	}
}

// nhiStartItem is a held non-human start with a purpose of n bytes.
func nhiStartItem(i, n int) HoldItem {
	key := fmt.Sprintf("nhi-bot%d-production", i)
	return HoldItem{Action: HoldStart, HRISID: key, Source: "api", HeldAt: t0, Input: &JoinerInput{HRISID: key, Kind: "service-account", Source: "api",
		Request: &activities.NonHumanRequest{Name: fmt.Sprintf("bot%d", i), SponsorID: "100", Environment: "production",
			Purpose: strings.Repeat("p", n)}}}
}

// payloadBytes is the size of the hold's continue-as-new input as the
// default converter encodes it.
func payloadBytes(t *testing.T, st HoldState) int {
	p, err := converter.GetDefaultDataConverter().ToPayloads(st)
	require.NoError(t, err)
	return p.Size()
}

// Temporal refuses payloads over 2 MB (blob size limit); a hold whose
// state passed it could never continue as new.
const temporalPayloadLimit = 2 * 1024 * 1024

// The burst of the review (5,000 held non-human starts with 200-byte
// purposes) would be a 3 MB continue-as-new input. The hold takes items
// until their size reaches its cap, refuses the next one with a clear
// error, and its whole state — with a worst-case log and full windows —
// stays under Temporal's limit.
func TestHoldStateAlwaysFitsAContinueAsNew(t *testing.T) {
	var unbounded HoldState
	for i := range holdMaxHeldLimit {
		unbounded.Held = append(unbounded.Held, nhiStartItem(i, 200))
	}
	over := payloadBytes(t, unbounded)
	require.Greater(t, over, temporalPayloadLimit, "the count cap alone lets the state outgrow a payload")
	t.Logf("5000 held starts, 200-byte purposes: %d bytes", over)

	h := &hold{}
	limits := HoldLimits{Window: time.Hour, MaxStarts: 0, MaxHeld: holdMaxHeldLimit}
	var refused error
	for i := range holdMaxHeldLimit {
		req := AdmitRequest{Item: nhiStartItem(i, 200), Limits: limits}
		if refused = h.validateAdmit(req); refused != nil {
			break
		}
		require.True(t, h.admit(t0, req).Held)
	}
	require.Error(t, refused, "the hold refuses before its state outgrows a payload")
	require.ErrorContains(t, refused, "the hold is full")
	require.ErrorContains(t, refused, "bytes")
	require.Less(t, len(h.st.Held), holdMaxHeldLimit)
	t.Logf("held before the size cap: %d items", len(h.st.Held))
	// A repeated delivery of a held item is still answered (it adds nothing).
	require.NoError(t, h.validateAdmit(AdmitRequest{Item: nhiStartItem(0, 200), Limits: limits}))

	// Worst case for the rest: a full log of the longest keys and outcomes
	// and reasons, and both windows full.
	st := h.st
	long := strings.Repeat("x", 10_000)
	for range holdLogSize {
		var keys []string
		for range holdLogKeys {
			keys = append(keys, clipN("start:"+strings.Repeat("k", 64)+" ("+long+")", holdLogKeyBytes))
		}
		st.Log = append(st.Log, HoldLogEntry{Decision: "discarded", By: clipN(long, holdLogReasonBytes),
			Reason: clipN(long, holdLogReasonBytes), At: t0, Count: 5000, Keys: keys})
	}
	for i := range holdMaxWindow {
		st.Starts = append(st.Starts, t0.Add(time.Duration(i)*time.Millisecond+time.Nanosecond))
		st.Rescinds = append(st.Rescinds, t0.Add(time.Duration(i)*time.Millisecond+time.Nanosecond))
	}
	size := payloadBytes(t, st)
	t.Logf("worst-case state at the cap: %d bytes (limit %d)", size, temporalPayloadLimit)
	require.Less(t, size, temporalPayloadLimit*9/10, "room to spare for the codec's envelope")

	// Letting go frees the room again.
	h.letGo(t0, "discarded", HoldDecision{All: true, By: "ops"})
	require.Zero(t, h.heldBytes)
	require.NoError(t, h.validateAdmit(AdmitRequest{Item: nhiStartItem(9999, 200), Limits: limits}))
}

// The log keeps bounded copies of what operators and outcomes say, and the
// windows count at most holdMaxWindow admissions.
func TestHoldLogAndWindowsAreBoundedInBytes(t *testing.T) {
	h := &hold{}
	h.admit(t0, AdmitRequest{Item: startItem("1"), Limits: HoldLimits{Window: time.Hour}})
	long := strings.Repeat("y", 5000)
	h.letGo(t0, "released", HoldDecision{All: true, By: long, Reason: long, Outcomes: map[string]string{"start:1": long}})
	e := h.st.Log[0]
	require.LessOrEqual(t, len(e.By), holdLogReasonBytes+len("…"))
	require.LessOrEqual(t, len(e.Reason), holdLogReasonBytes+len("…"))
	require.LessOrEqual(t, len(e.Keys[0]), holdLogKeyBytes+len("…"))
	require.True(t, strings.HasPrefix(e.Keys[0], "start:1 (yyy"))

	// A policy maximum above what the state can carry is held to it:
	// stricter, so the rest is held, none let through uncounted.
	big := HoldLimits{Window: time.Hour, MaxStarts: 1_000_000}
	var last Admission
	for i := range holdMaxWindow + 1 {
		last = h.admit(t0.Add(time.Duration(i)*time.Millisecond), AdmitRequest{Item: startItem(fmt.Sprint(i + 10)), Limits: big})
	}
	require.Len(t, h.st.Starts, holdMaxWindow)
	require.True(t, last.Held)
	require.Contains(t, last.Reason, fmt.Sprintf("more than %d starts", holdMaxWindow))
}

// Through the workflow: the update that would pass the size cap is refused
// by the validator (nothing recorded), the held ones stay, and the state
// continues as new intact.
func TestHoldRefusesAnItemPastTheSizeCap(t *testing.T) {
	r := newHoldRun(t)
	zero := HoldLimits{Window: time.Hour, MaxStarts: 0, MaxHeld: holdMaxHeldLimit}
	// 200 kB purposes: three fit in 768 KiB, the fourth does not.
	var res []*result
	for i := range 4 {
		res = append(res, r.update(UpdateHoldAdmit, AdmitRequest{Item: nhiStartItem(i, 200_000), Limits: zero}))
	}
	r.check(func() {
		for i := range 3 {
			require.NoError(t, res[i].rejected, i)
			require.True(t, res[i].adm.Held, i)
		}
		require.ErrorContains(t, res[3].rejected, "the hold is full (3 items")
		require.Len(t, r.view().Held, 3)
	})
	// A refused update does not count; a repeated delivery (collapsing
	// onto a held item) does, and is the fourth of this run.
	again := r.update(UpdateHoldAdmit, AdmitRequest{Item: nhiStartItem(0, 200_000), Limits: zero})
	r.env.ExecuteWorkflow(Hold, HoldState{UpdatesPerRun: 4})
	require.True(t, again.adm.AlreadyHeld)
	require.True(t, r.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, r.env.GetWorkflowError(), &can)
	var next HoldState
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Len(t, next.Held, 3)
	require.Less(t, can.Input.Size(), temporalPayloadLimit)
}

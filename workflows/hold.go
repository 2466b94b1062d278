package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"
)

// HoldWorkflowID is the ID of the intake's hold: one workflow per
// namespace and task queue in production, so every intake replica shares
// one window and one queue.
const HoldWorkflowID = "intake-hold"

// Update and query names of the hold. Operators use them through
// `starter hold list|release|discard`.
const (
	UpdateHoldAdmit   = "admit"
	UpdateHoldRelease = "release"
	UpdateHoldDiscard = "discard"
	QueryHold         = "hold"
)

// Hold actions: what a held item would do once released.
const (
	HoldStart   = "start"
	HoldRescind = "rescind"
)

// Bounds of the hold's state, so that it never outgrows a workflow's
// payload limits however large the burst.
const (
	// holdLogSize is how many operator decisions the hold remembers
	// (older ones stay in the workflow histories).
	holdLogSize = 100
	// holdLogKeys is how many item keys one logged decision lists.
	holdLogKeys = 50
	// holdMaxHeldLimit is the hard cap whatever the limits in a request say.
	holdMaxHeldLimit = 5000
	// holdMaxHeldBytes bounds the held items' encoded size. The hold's
	// whole state is its continue-as-new input, and Temporal refuses a
	// payload over 2 MB: past it the hold could not continue and would
	// wedge, every admission failing. 5,000 held non-human starts with
	// 200-byte purposes measured 3.18 MB, so the count cap alone is not
	// enough. The rest of the 2 MB is for the log (holdLogSize entries of
	// holdLogKeys keys, each bounded by holdLogKeyBytes: at most ~0.55 MB),
	// the windows' timestamps (bounded by holdMaxWindow: ~0.15 MB), the payload
	// codec's envelope and the limits. An item that would pass it is
	// refused like one over the count: nothing is lost, the sender is
	// answered with an error and retries once an operator has released or
	// discarded the burst.
	holdMaxHeldBytes = 768 << 10
	// holdLogKeyBytes bounds one logged key with its outcome, and
	// holdLogReasonBytes an operator's reason, as the log keeps them.
	holdLogKeyBytes    = 100
	holdLogReasonBytes = 200
	// holdMaxWindow bounds the admissions a window counts: each is a
	// timestamp carried in the state. A policy maximum above it (the
	// policy allows up to 1,000,000) is held to it — stricter, never
	// looser: more is held for an operator, nothing is let through
	// uncounted.
	holdMaxWindow = 2000
	// holdDefaultUpdatesPerRun and holdMaxUpdatesPerRun: see
	// HoldState.UpdatesPerRun.
	holdDefaultUpdatesPerRun = 1000
	holdMaxUpdatesPerRun     = 1000
)

// HoldItem is one start or rescind the intake asked to carry out.
type HoldItem struct {
	Action string `json:"action"`
	HRISID string `json:"hrisId"`
	// Input is the joiner to start (Action start), kind as HR gave it.
	Input *JoinerInput `json:"input,omitempty"`
	// Rescind is the signal to send (Action rescind).
	Rescind *RescindSignal `json:"rescind,omitempty"`
	// Source is the intake path (webhook, api, bulk, scim, import).
	Source string `json:"source,omitempty"`
	// HeldAt is when the hold took it (set by the hold).
	HeldAt time.Time `json:"heldAt"`
}

// Key identifies an item in the hold: its action and HR record. A second
// request for the same key while it is held collapses onto the first.
func (h HoldItem) Key() string { return h.Action + ":" + h.HRISID }

// HoldLimits are the policy's blast radius, sent with every admission so
// that a changed policy applies without touching the running hold.
type HoldLimits struct {
	Window      time.Duration `json:"window"`
	MaxStarts   int           `json:"maxStarts"`
	MaxRescinds int           `json:"maxRescinds"`
	MaxHeld     int           `json:"maxHeld"`
}

// AdmitRequest asks whether one more start or rescind may go now.
type AdmitRequest struct {
	Item   HoldItem   `json:"item"`
	Limits HoldLimits `json:"limits"`
}

// Admission is the hold's answer. Exactly one of Admitted and Held is set.
type Admission struct {
	// Admitted: carry it out now; it counts in the window.
	Admitted bool `json:"admitted"`
	// Held: it waits in the hold for an operator.
	Held bool `json:"held"`
	// AlreadyHeld: the same key was held already; nothing changed.
	AlreadyHeld bool `json:"alreadyHeld,omitempty"`
	// InWindow is how many of this action the window holds now.
	InWindow int `json:"inWindow"`
	// Queued is how many of this action wait in the hold now.
	Queued int `json:"queued"`
	// Reason says why it was held.
	Reason string `json:"reason,omitempty"`
}

// HoldDecision asks the hold to let go of items: release (the operator
// carried them out) or discard (the operator dropped them).
type HoldDecision struct {
	// Keys are the items (HoldItem.Key) to let go of; All takes every item.
	Keys []string `json:"keys,omitempty"`
	All  bool     `json:"all,omitempty"`
	// By is the operator; required.
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Outcomes records what releasing did per key (started, already
	// running, refused: ...), for the log.
	Outcomes map[string]string `json:"outcomes,omitempty"`
}

// HoldLogEntry is one operator decision, as the hold remembers it.
type HoldLogEntry struct {
	Decision string    `json:"decision"` // released or discarded
	By       string    `json:"by"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
	Count    int       `json:"count"`
	// Keys lists up to holdLogKeys of the items, with their outcomes.
	Keys []string `json:"keys"`
}

// HoldState is the hold's whole state; it is also its continue-as-new input.
type HoldState struct {
	// Starts and Rescinds are when admitted ones happened, within the
	// window (older ones are pruned), so their length is bounded by the
	// limits.
	Starts   []time.Time    `json:"starts,omitempty"`
	Rescinds []time.Time    `json:"rescinds,omitempty"`
	Held     []HoldItem     `json:"held,omitempty"`
	Log      []HoldLogEntry `json:"log,omitempty"`
	// Limits are the last limits an admission brought.
	Limits HoldLimits `json:"limits"`
	// UpdatesPerRun bounds one run's history: after that many updates the
	// hold continues as new with its state. 0 means 1,000, which is also
	// the most (a larger value would only let the history grow); tests
	// start the hold with a small one. It travels with the state.
	UpdatesPerRun int `json:"updatesPerRun,omitempty"`
}

// HoldView is the answer of the hold query.
type HoldView struct {
	HoldState
	StartsInWindow   int       `json:"startsInWindow"`
	RescindsInWindow int       `json:"rescindsInWindow"`
	Now              time.Time `json:"now"`
}

type hold struct {
	st      HoldState
	updates int
	// heldBytes is the encoded size of st.Held (holdMaxHeldBytes).
	heldBytes int
}

// updatesPerRun is the state's UpdatesPerRun within its bounds.
func (h *hold) updatesPerRun() int {
	switch n := h.st.UpdatesPerRun; {
	case n <= 0:
		return holdDefaultUpdatesPerRun
	case n > holdMaxUpdatesPerRun:
		return holdMaxUpdatesPerRun
	default:
		return n
	}
}

// itemBytes is the encoded size of a held item, as it would travel in the
// continue-as-new input (JSON, the default converter's encoding).
func itemBytes(it HoldItem) int {
	b, err := json.Marshal(it)
	if err != nil {
		return holdMaxHeldBytes + 1 // cannot be carried: never admitted
	}
	return len(b)
}

// Hold is the intake's blast-radius guard: one long-running workflow that
// counts admitted joiner starts and rescinds within a sliding window and
// holds whatever exceeds the policy's limits until an operator releases or
// discards it. Every admission is an update, so concurrent intake replicas
// are serialised through it and the count survives any restart; the held
// items are its state, so nothing held is lost. Once anything of an action
// is held, later items of that action are held too: a burst is stopped
// whole rather than let trickle through as the window slides.
func Hold(ctx workflow.Context, st HoldState) error {
	h := &hold{st: st}
	for _, it := range st.Held {
		h.heldBytes += itemBytes(it)
	}
	if err := workflow.SetQueryHandler(ctx, QueryHold, func() (HoldView, error) {
		return h.view(workflow.Now(ctx)), nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateHoldAdmit,
		func(ctx workflow.Context, req AdmitRequest) (Admission, error) {
			h.updates++
			return h.admit(workflow.Now(ctx), req), nil
		},
		workflow.UpdateHandlerOptions{Validator: h.validateAdmit},
	); err != nil {
		return err
	}
	for _, name := range []string{UpdateHoldRelease, UpdateHoldDiscard} {
		decision := "released"
		if name == UpdateHoldDiscard {
			decision = "discarded"
		}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(ctx workflow.Context, d HoldDecision) ([]HoldItem, error) {
				h.updates++
				return h.letGo(workflow.Now(ctx), decision, d), nil
			},
			workflow.UpdateHandlerOptions{Validator: validateDecision},
		); err != nil {
			return err
		}
	}
	if err := workflow.Await(ctx, func() bool {
		return h.updates >= h.updatesPerRun() || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
	}); err != nil {
		return err
	}
	// Let updates in flight finish so none is lost across the new run.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	return workflow.NewContinueAsNewError(ctx, Hold, h.st)
}

// validateAdmit refuses malformed requests and a full hold before anything
// is recorded: a full hold (by count, or by the held items' size, so that
// its state always fits a continue-as-new) answers with an error (the
// intake then answers 503 so the sender retries) rather than drop an item.
func (h *hold) validateAdmit(req AdmitRequest) error {
	it := req.Item
	switch it.Action {
	case HoldStart:
		if it.Input == nil || it.Input.HRISID != it.HRISID {
			return errors.New("a start needs its joiner input for the same HR record")
		}
	case HoldRescind:
		if it.Rescind == nil {
			return errors.New("a rescind needs its signal")
		}
	default:
		return fmt.Errorf("action %q: want start or rescind", it.Action)
	}
	if err := ValidateHRISID(it.HRISID); err != nil {
		return err
	}
	l := req.Limits
	if l.Window <= 0 || l.MaxStarts < 0 || l.MaxRescinds < 0 {
		return errors.New("limits: want a positive window and non-negative maxima")
	}
	if h.find(it.Key()) >= 0 {
		return nil // collapses onto the held one: nothing is added
	}
	if len(h.st.Held) >= maxHeld(l) {
		return fmt.Errorf("the hold is full (%d items): release or discard some first", len(h.st.Held))
	}
	if n := itemBytes(it); h.heldBytes+n > holdMaxHeldBytes {
		return fmt.Errorf("the hold is full (%d items, %d of %d bytes; this one is %d bytes): release or discard some first",
			len(h.st.Held), h.heldBytes, holdMaxHeldBytes, n)
	}
	return nil
}

func validateDecision(d HoldDecision) error {
	if d.By == "" {
		return errors.New("by: say who decides")
	}
	if !d.All && len(d.Keys) == 0 {
		return errors.New("name the items (keys) or all")
	}
	return nil
}

func maxHeld(l HoldLimits) int {
	if l.MaxHeld <= 0 || l.MaxHeld > holdMaxHeldLimit {
		return holdMaxHeldLimit
	}
	return l.MaxHeld
}

func (h *hold) find(key string) int {
	return slices.IndexFunc(h.st.Held, func(it HoldItem) bool { return it.Key() == key })
}

func (h *hold) queued(action string) int {
	n := 0
	for _, it := range h.st.Held {
		if it.Action == action {
			n++
		}
	}
	return n
}

// prune drops admissions that left the window.
func prune(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	cut := now.Add(-window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) > holdMaxWindow {
		ts = ts[len(ts)-holdMaxWindow:]
	}
	return slices.Clone(ts)
}

func (h *hold) admit(now time.Time, req AdmitRequest) Admission {
	h.st.Limits = req.Limits
	w := req.Limits.Window
	h.st.Starts = prune(h.st.Starts, now, w)
	h.st.Rescinds = prune(h.st.Rescinds, now, w)
	it := req.Item
	window, max := &h.st.Starts, req.Limits.MaxStarts
	if it.Action == HoldRescind {
		window, max = &h.st.Rescinds, req.Limits.MaxRescinds
	}
	max = min(max, holdMaxWindow)
	if h.find(it.Key()) >= 0 {
		return Admission{Held: true, AlreadyHeld: true, InWindow: len(*window), Queued: h.queued(it.Action),
			Reason: "already held"}
	}
	var reason string
	switch {
	case h.queued(it.Action) > 0:
		reason = fmt.Sprintf("%ss are held until an operator releases or discards the ones waiting", it.Action)
	case len(*window) >= max:
		reason = fmt.Sprintf("more than %d %ss within %s (policy intake.blast_radius)", max, it.Action, w)
	default:
		*window = append(*window, now)
		return Admission{Admitted: true, InWindow: len(*window), Queued: 0}
	}
	it.HeldAt = now
	h.st.Held = append(h.st.Held, it)
	h.heldBytes += itemBytes(it)
	return Admission{Held: true, InWindow: len(*window), Queued: h.queued(it.Action), Reason: reason}
}

// letGo removes the named (or all) items and logs who did it; it returns
// what it removed. Unknown keys are ignored, so a repeated release is a
// no-op.
func (h *hold) letGo(now time.Time, decision string, d HoldDecision) []HoldItem {
	var gone, kept []HoldItem
	for _, it := range h.st.Held {
		if d.All || slices.Contains(d.Keys, it.Key()) {
			gone = append(gone, it)
		} else {
			kept = append(kept, it)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	h.st.Held = kept
	h.heldBytes = 0
	for _, it := range kept {
		h.heldBytes += itemBytes(it)
	}
	entry := HoldLogEntry{Decision: decision, By: clipN(d.By, holdLogReasonBytes), Reason: clipN(d.Reason, holdLogReasonBytes), At: now, Count: len(gone)}
	for _, it := range gone {
		if len(entry.Keys) == holdLogKeys {
			break
		}
		k := it.Key()
		if o := d.Outcomes[k]; o != "" {
			k += " (" + o + ")"
		}
		entry.Keys = append(entry.Keys, clipN(k, holdLogKeyBytes))
	}
	h.st.Log = append(h.st.Log, entry)
	if len(h.st.Log) > holdLogSize {
		h.st.Log = slices.Clone(h.st.Log[len(h.st.Log)-holdLogSize:])
	}
	return gone
}

func (h *hold) view(now time.Time) HoldView {
	v := HoldView{HoldState: h.st, Now: now}
	if w := h.st.Limits.Window; w > 0 {
		v.StartsInWindow = len(prune(h.st.Starts, now, w))
		v.RescindsInWindow = len(prune(h.st.Rescinds, now, w))
	}
	return v
}

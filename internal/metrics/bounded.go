package metrics

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/workflows"
)

// Other is the label value every value outside a label's vocabulary is
// folded into.
const Other = "other"

// Tags of the Temporal SDK's metrics whose values a caller of Temporal can
// choose. Anyone who may start workflows on Joinery's namespace (an
// operator, a leaked Temporal credential, a compromised service next to
// Joinery) can start a workflow of any type, and a workflow running on a
// worker of their own can schedule activities of any type name, on
// Joinery's task queue. Joinery's worker then polls those tasks, fails
// them (nothing is registered under those names) and the SDK records each
// with the caller's type name as its workflow_type or activity_type. One
// new name is a dozen new series (histograms have a series per bucket), so
// a loop of random names would grow the worker's memory and every scrape
// without bound, and bury the series the alerts read.
const (
	tagWorkflowType   = "workflow_type"
	tagActivityType   = "activity_type"
	tagNexusService   = "nexus_service"
	tagNexusOperation = "nexus_operation"
)

// maxTagValues bounds the distinct values of every other tag of the SDK's
// metrics (namespace, task_queue, operation, status_code, poller_type,
// worker_type, failure_reason, cause, ...). Their values are the SDK's
// own, or Joinery's configuration, today: the bound is a second line, so
// that a tag a future SDK adds, or a value a caller turns out to control,
// cannot grow without limit either. The SDK's gRPC operation names are the
// largest set (a few dozen).
const maxTagValues = 100

// cardinalityLimit bounds the series of each SDK instrument in the
// OpenTelemetry pipeline itself (sdkmetric.WithCardinalityLimit): a third
// line behind the tag vocabulary. Series past it are folded by the
// OpenTelemetry SDK into one with otel_metric_overflow="true".
const cardinalityLimit = 500

// Vocabulary is the type names the SDK's metrics may carry as
// workflow_type and activity_type: the workflows and activities the
// process registers. Every other name is reported as "other".
type Vocabulary struct {
	WorkflowTypes []string
	ActivityTypes []string
}

// JoineryVocabulary is every workflow and activity a Joinery process
// registers: the joiner, the reconciler and the intake's hold; the
// activities of activities.Activities, Eligibility, Reconcile and Sweep.
// The names are derived from the code the way the SDK derives them at
// registration (a workflow function's name; each exported method of an
// activity struct), so a new activity is in the vocabulary without anyone
// remembering to add it.
func JoineryVocabulary() Vocabulary {
	var v Vocabulary
	for _, wf := range []any{workflows.Joiner, workflows.Reconciler, workflows.Hold} {
		v.WorkflowTypes = append(v.WorkflowTypes, FunctionName(wf))
	}
	for _, acts := range []any{&activities.Activities{}, &activities.Eligibility{}, &activities.Reconcile{}, &activities.Sweep{}} {
		v.ActivityTypes = append(v.ActivityTypes, MethodNames(acts)...)
	}
	slices.Sort(v.ActivityTypes)
	v.ActivityTypes = slices.Compact(v.ActivityTypes)
	return v
}

// FunctionName is the name the SDK registers a workflow function under by
// default: the function's name without its package path.
func FunctionName(fn any) string {
	full := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	return strings.TrimSuffix(full[strings.LastIndex(full, ".")+1:], "-fm")
}

// MethodNames are the exported methods of v, the names the SDK registers
// an activity struct's methods under by default.
func MethodNames(v any) []string {
	t := reflect.TypeOf(v)
	out := make([]string, 0, t.NumMethod())
	for i := range t.NumMethod() {
		out = append(out, t.Method(i).Name)
	}
	return out
}

// bounds folds tag values outside their vocabulary into Other. It is
// shared by every handler derived from one BoundedHandler, so the per-tag
// caps count across all of them.
type bounds struct {
	allowed map[string]map[string]bool // tag -> its closed vocabulary
	mu      sync.Mutex
	seen    map[string]map[string]bool // other tags -> values seen so far
}

func newBounds(v Vocabulary) *bounds {
	set := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	return &bounds{
		allowed: map[string]map[string]bool{
			// "none" is the SDK's own value for metrics outside any type.
			tagWorkflowType: set(append([]string{"none"}, v.WorkflowTypes...)...),
			tagActivityType: set(append([]string{"none"}, v.ActivityTypes...)...),
			// Joinery registers no Nexus service: any name is a caller's.
			tagNexusService:   set("none"),
			tagNexusOperation: set("none"),
		},
		seen: map[string]map[string]bool{},
	}
}

// value is what tag=v is exported as.
func (b *bounds) value(tag, v string) string {
	if allowed, ok := b.allowed[tag]; ok {
		if allowed[v] {
			return v
		}
		return Other
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	vals := b.seen[tag]
	if vals == nil {
		vals = map[string]bool{}
		b.seen[tag] = vals
	}
	if vals[v] {
		return v
	}
	if len(vals) >= maxTagValues {
		return Other
	}
	vals[v] = true
	return v
}

func (b *bounds) clean(tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[k] = b.value(k, v)
	}
	return out
}

// BoundedHandler wraps the SDK's metrics handler so that no tag value a
// caller of Temporal chooses reaches the exported series: workflow and
// activity types outside v (and any Nexus name) become "other", and every
// other tag keeps at most maxTagValues distinct values. The metric names
// and the tag keys are the SDK's and Joinery's code's, never a caller's.
func BoundedHandler(next client.MetricsHandler, v Vocabulary) client.MetricsHandler {
	return boundedHandler{next: next, b: newBounds(v)}
}

type boundedHandler struct {
	next client.MetricsHandler
	b    *bounds
}

// WithTags implements client.MetricsHandler.
func (h boundedHandler) WithTags(tags map[string]string) client.MetricsHandler {
	return boundedHandler{next: h.next.WithTags(h.b.clean(tags)), b: h.b}
}

// Counter implements client.MetricsHandler.
func (h boundedHandler) Counter(name string) client.MetricsCounter { return h.next.Counter(name) }

// Gauge implements client.MetricsHandler.
func (h boundedHandler) Gauge(name string) client.MetricsGauge { return h.next.Gauge(name) }

// Timer implements client.MetricsHandler.
func (h boundedHandler) Timer(name string) client.MetricsTimer { return h.next.Timer(name) }

// Unwrap is the handler underneath (the SDK's convention for wrappers).
func (h boundedHandler) Unwrap() client.MetricsHandler { return h.next }

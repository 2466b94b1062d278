package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/workflows"
)

// Names of the step and outcome metrics.
const (
	StepDuration = "joinery_step_duration_seconds"
	// JoinerOutcomes is emitted from workflow code through
	// workflow.GetMetricsHandler (silenced during replay), so it goes out
	// through the SDK's pipeline with a _total suffix:
	// joinery_joiner_outcomes_total{outcome,kind}, kind being person or
	// the non-human kind.
	JoinerOutcomes = "joinery_joiner_outcomes"
)

// nonHumanKinds and outcomes are the label values a joiner may give;
// anything else is "person" or "other", so labels stay a fixed vocabulary.
var (
	nonHumanKinds = []string{"service-account", "pipeline", "ai-agent"}
	outcomes      = []string{
		workflows.OutcomeCompleted, workflows.OutcomeRejected, workflows.OutcomeRescinded, workflows.OutcomeFailed,
		workflows.OutcomeCompensationFailed, workflows.OutcomeExpired, workflows.OutcomeRevoked,
		workflows.OutcomeNeedsOperator, workflows.OutcomeAlreadyProvisioned,
	}
)

func oneOf(v string, allowed []string, empty string) string {
	if v == "" {
		return empty
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return "other"
}

// Steps is a worker interceptor that measures every activity attempt
// (each of a joiner's steps: ClaimAccount, GrantGroup, IssueCredential,
// WriteBack, their undos, ...) by activity name and result, and counts
// each joiner's outcome when its workflow returns.
//
// Activity names are the registered method names, a fixed set. The
// outcome counter is emitted with workflow.GetMetricsHandler, which the
// SDK silences while a workflow replays, so a joiner counts once however
// often its history is replayed; it adds no command, so histories and
// replay are unchanged.
type Steps struct {
	interceptor.WorkerInterceptorBase
	duration *prometheus.HistogramVec
	// steps is the step label's vocabulary: activity names outside it are
	// "other". The SDK answers an unregistered activity type before any
	// interceptor runs, but a name is the one label here a caller of
	// Temporal could choose, so it is bounded here too, not only there.
	steps map[string]bool
}

// NewSteps registers the step histogram on reg, with JoineryVocabulary's
// activities as the step names.
func NewSteps(reg prometheus.Registerer) (*Steps, error) {
	return NewStepsFor(reg, JoineryVocabulary())
}

// NewStepsFor is NewSteps for a worker that registers v's activities.
func NewStepsFor(reg prometheus.Registerer, v Vocabulary) (*Steps, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    StepDuration,
		Help:    "Duration of each activity attempt (a joiner's step) by activity name and result (ok, error, canceled).",
		Buckets: latencyBuckets,
	}, []string{"step", "result"})
	if err := reg.Register(h); err != nil {
		return nil, err
	}
	steps := map[string]bool{}
	for _, a := range v.ActivityTypes {
		steps[a] = true
	}
	return &Steps{duration: h, steps: steps}, nil
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (s *Steps) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &stepActivity{steps: s}
	i.Next = next
	return i
}

// InterceptWorkflow implements interceptor.WorkerInterceptor.
func (s *Steps) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &outcomeWorkflow{}
	i.Next = next
	return i
}

type stepActivity struct {
	interceptor.ActivityInboundInterceptorBase
	steps *Steps
}

func (a *stepActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	start := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	result := "ok"
	switch {
	case temporal.IsCanceledError(err) || ctx.Err() != nil && err != nil:
		result = "canceled"
	case err != nil:
		result = "error"
	}
	step := activity.GetInfo(ctx).ActivityType.Name
	if !a.steps.steps[step] {
		step = Other
	}
	a.steps.duration.WithLabelValues(step, result).Observe(time.Since(start).Seconds())
	return res, err
}

type outcomeWorkflow struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (w *outcomeWorkflow) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (interface{}, error) {
	res, err := w.Next.ExecuteWorkflow(ctx, in)
	if workflow.GetInfo(ctx).WorkflowType.Name != "Joiner" {
		return res, err
	}
	if err != nil && workflow.IsContinueAsNewError(err) {
		return res, err // the joiner goes on in its next run, which counts it
	}
	// A person's kind (employee or contractor) is the HR record's to say
	// and is not in the input; a non-human's is.
	kind := "person"
	if len(in.Args) == 1 {
		if ji, ok := in.Args[0].(workflows.JoinerInput); ok && slices.Contains(nonHumanKinds, ji.Kind) {
			kind = ji.Kind
		}
	}
	outcome := "error" // the workflow returned an error: it will be retried or fail
	if r, ok := res.(workflows.JoinerResult); ok && err == nil {
		outcome = oneOf(r.Outcome, outcomes, "none")
	}
	if err != nil && temporal.IsCanceledError(err) {
		outcome = "canceled"
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"outcome": outcome, "kind": kind}).
		Counter(JoinerOutcomes).Inc(1)
	return res, err
}

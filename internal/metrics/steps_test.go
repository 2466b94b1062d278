package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/workflows"
)

// stand-ins for the Joiner and one of its steps: the interceptor is
// judged by what it records, not by what the real joiner does (which the
// integration test runs).
func fakeJoiner(ctx workflow.Context, in workflows.JoinerInput) (workflows.JoinerResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 2}})
	var out string
	err := workflow.ExecuteActivity(ctx, "ClaimAccount", in.HRISID).Get(ctx, &out)
	if in.Source == "fail" {
		return workflows.JoinerResult{}, errors.New("boom")
	}
	if err != nil {
		return workflows.JoinerResult{HRISID: in.HRISID, Outcome: workflows.OutcomeFailed}, nil
	}
	return workflows.JoinerResult{HRISID: in.HRISID, Outcome: in.RequestedBy}, nil
}

func claimAccount(_ context.Context, id string) (string, error) {
	if id == "bad" {
		return "", errors.New("ldap down")
	}
	return "u-" + id, nil
}

func TestStepsRecordStepLatencyAndOneOutcomePerJoiner(t *testing.T) {
	reg := NewRegistry()
	mh, err := reg.TemporalHandler()
	require.NoError(t, err)
	steps, err := NewSteps(reg.Registerer())
	require.NoError(t, err)

	run := func(in workflows.JoinerInput) {
		var s testsuite.WorkflowTestSuite
		s.SetMetricsHandler(mh)
		env := s.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{steps}})
		env.RegisterWorkflowWithOptions(fakeJoiner, workflow.RegisterOptions{Name: "Joiner"})
		env.RegisterActivityWithOptions(claimAccount, activity.RegisterOptions{Name: "ClaimAccount"})
		env.ExecuteWorkflow("Joiner", in)
		require.True(t, env.IsWorkflowCompleted())
	}
	run(workflows.JoinerInput{HRISID: "200", RequestedBy: workflows.OutcomeCompleted})
	run(workflows.JoinerInput{HRISID: "nhi-bot", Kind: "pipeline", RequestedBy: workflows.OutcomeRejected})
	run(workflows.JoinerInput{HRISID: "201", Kind: "contractor", RequestedBy: "Ada Lovelace"})
	run(workflows.JoinerInput{HRISID: "202", Source: "fail"})
	run(workflows.JoinerInput{HRISID: "bad"})

	fams, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	var text strings.Builder
	for _, f := range fams {
		_, _ = expfmt.MetricFamilyToText(&text, f)
	}
	out := text.String()
	for _, want := range []string{
		`outcome="completed"`, `outcome="rejected"`, `outcome="other"`, `outcome="error"`,
	} {
		require.Contains(t, out, want)
	}
	count := func(outcome, kind string) float64 {
		for _, f := range fams {
			if f.GetName() != JoinerOutcomes+"_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["outcome"] == outcome && l["kind"] == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	require.Equal(t, 1.0, count("completed", "person"))
	require.Equal(t, 1.0, count("rejected", "pipeline"))
	require.Equal(t, 1.0, count("other", "person"), "a contractor is a person; an unknown outcome is other")
	require.Equal(t, 1.0, count("error", "person"))
	require.NotContains(t, out, "Ada Lovelace")
	require.NotContains(t, out, `"200"`)

	// Each attempt of each step is one observation, by result: four
	// joiners claimed once, the fifth failed both its attempts.
	samples := func(step, result string) uint64 {
		for _, f := range fams {
			if f.GetName() != StepDuration {
				continue
			}
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["step"] == step && l["result"] == result {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
		return 0
	}
	require.Equal(t, uint64(4), samples("ClaimAccount", "ok"))
	require.Equal(t, uint64(2), samples("ClaimAccount", "error"))
	require.Equal(t, 1.0, count("failed", "person"), "the fifth joiner failed")
}

// A step that is not one of the worker's activities is "other": the step
// label carries only the names Joinery registers, whatever a caller asks
// the task queue to run.
func TestStepsFoldUnknownStepNames(t *testing.T) {
	reg := NewRegistry()
	steps, err := NewStepsFor(reg.Registerer(), Vocabulary{ActivityTypes: []string{"ClaimAccount"}})
	require.NoError(t, err)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{steps}})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		if err := workflow.ExecuteActivity(ctx, "ClaimAccount", "1").Get(ctx, nil); err != nil {
			return err
		}
		return workflow.ExecuteActivity(ctx, "ExfiltrateEveryone", "1").Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "Joiner"})
	env.RegisterActivityWithOptions(claimAccount, activity.RegisterOptions{Name: "ClaimAccount"})
	env.RegisterActivityWithOptions(claimAccount, activity.RegisterOptions{Name: "ExfiltrateEveryone"})
	env.ExecuteWorkflow("Joiner")
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	fams, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	var text strings.Builder
	for _, f := range fams {
		_, _ = expfmt.MetricFamilyToText(&text, f)
	}
	require.Contains(t, text.String(), `step="ClaimAccount"`)
	require.Contains(t, text.String(), `step="other"`)
	require.NotContains(t, text.String(), "Exfiltrate")
}

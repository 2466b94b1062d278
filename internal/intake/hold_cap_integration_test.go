package intake_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/workflows"
)

// On the dev stack's Temporal: the hold takes large held items until their
// size reaches its cap, refuses the next with the error the intake passes
// on (answered 429 with Retry-After on the API, 503 with Retry-After on the
// webhook, so the sender retries; nothing is lost), continues as
// new with everything it holds (the state fits Temporal's payload limit),
// and the next run still refuses until an operator discards.
func TestIntegrationHoldRefusesPastItsSizeCapAndKeepsContinuing(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := intake.HoldFor(e.c, e.cfg)
	stop, err := h.StartWorker()
	require.NoError(t, err)
	t.Cleanup(stop)
	// A short run, so that the continuation happens within the test.
	first, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: h.ID, TaskQueue: h.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL}, workflows.Hold, workflows.HoldState{UpdatesPerRun: 5})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), h.ID, "", "test over") })

	limits := workflows.HoldLimits{Window: time.Hour, MaxStarts: 0, MaxHeld: 5000}
	item := func(i int) workflows.HoldItem {
		key := fmt.Sprintf("nhi-capbot%d-production", i)
		return workflows.HoldItem{Action: workflows.HoldStart, HRISID: key, Source: "api",
			Input: &workflows.JoinerInput{HRISID: key, Kind: "service-account", Source: "api",
				Request: &activities.NonHumanRequest{Name: fmt.Sprintf("capbot%d", i), SponsorID: "100", Environment: "production",
					Purpose: strings.Repeat("p", 190_000)}}}
	}
	for i := range 4 {
		adm, err := h.Admit(ctx, workflows.AdmitRequest{Item: item(i), Limits: limits})
		require.NoError(t, err, i)
		require.True(t, adm.Held, i)
	}
	_, err = h.Admit(ctx, workflows.AdmitRequest{Item: item(4), Limits: limits})
	require.ErrorContains(t, err, "the hold is full (4 items")
	require.ErrorContains(t, err, "bytes")

	// The fifth accepted update (a repeated delivery) ends the run.
	adm, err := h.Admit(ctx, workflows.AdmitRequest{Item: item(0), Limits: limits})
	require.NoError(t, err)
	require.True(t, adm.AlreadyHeld)
	require.Eventually(t, func() bool {
		d, err := e.c.DescribeWorkflowExecution(ctx, h.ID, first.GetRunID())
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
	}, 30*time.Second, 200*time.Millisecond, "the hold continued as new with ~760 kB of held items")
	v, err := h.View(ctx)
	require.NoError(t, err)
	require.Len(t, v.Held, 4, "everything held is in the next run")
	require.Equal(t, 5, v.UpdatesPerRun)

	_, err = h.Admit(ctx, workflows.AdmitRequest{Item: item(5), Limits: limits})
	require.ErrorContains(t, err, "the hold is full (4 items", "still full in the next run")
	gone, err := h.Discard(ctx, nil, true, "ops.test", "cap test")
	require.NoError(t, err)
	require.Len(t, gone, 4)
	adm, err = h.Admit(ctx, workflows.AdmitRequest{Item: item(5), Limits: limits})
	require.NoError(t, err, "room again once the operator has discarded")
	require.True(t, adm.Held)
}

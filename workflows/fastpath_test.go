package workflows

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
)

// On the fast path the four reads of the planning phase run as local
// activities and no write does: the claim, the grants, the credential, the
// write-back, the notifications and the audit export stay regular
// activities, whose execution the server records.
func TestFastPathRunsOnlyReadsAsLocalActivities(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	var mu sync.Mutex
	local, regular := map[string]int{}, map[string]int{}
	f.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		mu.Lock()
		defer mu.Unlock()
		local[info.ActivityType.Name]++
	})
	f.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		regular[info.ActivityType.Name]++
	})
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, map[string]int{"CheckEligible": 1, "FetchJoiner": 1, "PlanJoiner": 1, "SnapshotHRIS": 1}, local)
	for _, read := range []string{"CheckEligible", "FetchJoiner", "PlanJoiner", "SnapshotHRIS"} {
		require.Zero(t, regular[read], "%s ran as a regular activity too", read)
	}
	for _, write := range []string{"ClaimAccount", "GrantGroup", "IssueCredential", "WriteBack", "Notify", "ExportAudit"} {
		require.NotZero(t, regular[write], "%s must stay a regular activity", write)
	}
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls)
}

// A read that fails on the fast path fails the joiner before anything is
// created, as the regular activity did: bad input changes nothing.
func TestFastPathFailedReadCreatesNothing(t *testing.T) {
	f := newFixture(t)
	f.env.OnActivity(f.acts.FetchJoiner, mock.Anything, mock.Anything).Return(policy.Worker{},
		temporal.NewNonRetryableApplicationError("no such HR record", "HRISNotFound", nil)).Once()
	f.provisioning()
	_, err := f.run()
	require.Error(t, err)
	require.Empty(t, f.calls, "nothing was created")
}

// The order checks (activities/orders.go) read the caller from
// activity.GetInfo. A local activity gets the calling workflow's ID, run,
// type and task queue there too, so a read made local is admitted (or
// refused) for the same caller as before.
func TestLocalActivityInfoNamesTheCallingWorkflow(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var got activity.Info
	env.RegisterActivityWithOptions(func(ctx context.Context) error {
		got = activity.GetInfo(ctx)
		return nil
	}, activity.RegisterOptions{Name: "InfoProbe"})
	wf := func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Second})
		return workflow.ExecuteLocalActivity(ctx, "InfoProbe").Get(ctx, nil)
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: activities.JoinerWorkflowType})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: JoinerWorkflowID("200"), TaskQueue: "joinery-joiners"})
	env.ExecuteWorkflow(activities.JoinerWorkflowType)
	require.NoError(t, env.GetWorkflowError())
	require.True(t, got.IsLocalActivity)
	require.Equal(t, JoinerWorkflowID("200"), got.WorkflowExecution.ID)
	require.NotEmpty(t, got.WorkflowExecution.RunID)
	require.NotNil(t, got.WorkflowType)
	require.Equal(t, activities.JoinerWorkflowType, got.WorkflowType.Name)
	require.Equal(t, "joinery-joiners", got.TaskQueue)
}

// fastPathHistories are joiner histories recorded on a private dev server
// by the bench (internal/cmd/bench), payloads decoded with the codec
// server: before-fast-path-completed.json by the worker before
// "joiner-fast-path" (fourteen version markers, every read a regular
// activity), so it proves a running joiner keeps replaying after the
// change; fast-path-completed.json by the worker with it (one version
// marker of its own, four local-activity markers). They live apart from testdata/histories because their signed
// decisions name their workflow ID, given here.
var fastPathHistories = map[string]string{
	"before-fast-path-completed.json": "joiner-4282",
	"fast-path-completed.json":        "joiner-6034",
}

func TestReplayFastPathHistories(t *testing.T) {
	for name, id := range fastPathHistories {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "testdata", "fastpath", name))
			require.NoError(t, err)
			for _, re := range []*regexp.Regexp{regexp.MustCompile(`hv[sbr]\.[A-Za-z0-9_-]{20,}`), regexp.MustCompile(`dev-ldap-admin|dev-hris-key`)} {
				require.False(t, re.Match(raw), "%s holds a secret", name)
			}
			hist, err := client.HistoryFromJSON(bytes.NewReader(raw), client.HistoryJSONOptions{})
			require.NoError(t, err)
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Joiner)
			logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			exec := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id,
				RunID: hist.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId()}}
			require.NoError(t, r.ReplayWorkflowHistoryWithOptions(logger, hist, exec))
		})
	}
}

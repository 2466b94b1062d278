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

// On the fast path (level 2, localsteps.go) every step of a happy joiner
// runs as a local activity — the four planning reads, the decision reads
// and the writes — and none as a regular one; the steps run in the same
// order as before.
func TestFastPathRunsEveryStepAsLocalActivity(t *testing.T) {
	f := newFixture(t)
	f.env.OnActivity(f.acts.SearchPseudonyms, mock.Anything, mock.Anything).Return(map[string]string{}, nil)
	f.happy()
	f.provisioning()
	local, regular := f.countActivities()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	for _, name := range []string{"CheckEligible", "FetchJoiner", "PlanJoiner", "SnapshotHRIS", "TrustedDecisionKeys",
		"SearchPseudonyms", "CheckApprovers", "ClaimAccount", "GrantGroup", "IssueCredential", "WriteBack", "Notify", "ExportAudit"} {
		require.NotZero(t, local[name], "%s must run as a local activity", name)
	}
	require.Equal(t, 2, local["GrantGroup"])
	require.Empty(t, regular, "no step of a happy joiner runs as a regular activity")
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls)
}

// countActivities counts, by name, the local and the regular activities the
// joiner starts (every attempt).
func (f *fixture) countActivities() (local, regular map[string]int) {
	var mu sync.Mutex
	local, regular = map[string]int{}, map[string]int{}
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
	return local, regular
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
	// Level 2 (localsteps.go), recorded by the bench on the dev stack:
	// one version marker, every step a local-activity marker, two
	// workflow tasks in all.
	"local-steps-completed.json": "joiner-14165",
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

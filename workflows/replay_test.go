package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays real joiner histories recorded from
// the dev stack (testdata/histories, exported with `temporal workflow show
// -o json`) against today's workflow code. A change that would break a
// running joiner fails here; such changes go behind workflow.GetVersion.
//
// The recorded histories predate the "notify-second-approver" and
// "decisions-while-waiting" versions, so they also prove those markers keep
// old joiners replaying. waiting-with-early-rejection.json is a joiner that
// got a rejection while waiting for its date under the old code.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4, "recorded histories are missing")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Joiner)
			logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, f))
		})
	}
}

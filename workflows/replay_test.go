package workflows

import (
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays real joiner histories recorded from
// the dev stack (testdata/histories, exported with `temporal workflow show
// -o json`) against today's workflow code. A change that would break a
// running joiner fails here; such changes go behind workflow.GetVersion.
//
// The recorded histories predate the "notify-second-approver" and
// "decisions-while-waiting" versions, so they also prove those markers keep
// old joiners replaying. waiting-with-early-rejection.json is a joiner that
// got a rejection while waiting for its date under the old code;
// update-decision-before-fix.json was approved by update under the code that
// did not wake for it ("update-decisions-wake"); v1-*.json come from the
// code before signed decisions; v2-nonhuman-signed-before-hardening.json is
// a service account approved with signed decisions before they named their
// run (it broke a developer's running joiner until that change was
// versioned: "signed-decisions-hardening").
// v3-continued-provisioned-rescinded.json is the second run of a hire that
// continued as new while Provisioned ("continue-as-new", with the
// "site-local-midnight" and "start-move-limits" markers), then had its start
// moved by HR and was rescinded; record_integration_test.go
// (`go test -tags record`) records it from the dev stack.
// v5-continued-awaiting-approval.json is the second run of a hire that a
// flood of refused decisions pushed to continue as new while awaiting
// approval ("continue-as-new-everywhere"): a decision signed for the first
// run is refused, ada's approval through the inbox for this run counts, the
// hire is provisioned and then rescinded (record_approval_integration_test.go).
// v5-continued-compensation-stuck.json is the second run of a rescinded
// hire that continued as new in the middle of its rollback, its group
// removal failing while retry-now signals grew its history; it undoes
// what was left once the directory answers (record_stuck_integration_test.go).
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4, "recorded histories are missing")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Joiner)
			logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			fh, err := os.Open(f)
			require.NoError(t, err)
			defer fh.Close()
			hist, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
			require.NoError(t, err)
			// Signed decisions name their workflow (and, since the
			// hardening version, their run): replay under the recorded
			// execution's own ID, not the replayer's placeholder, or every
			// recorded decision would be refused and the commands differ.
			exec := worker.ReplayWorkflowHistoryOptions{}
			if id, ok := recordedIDs[filepath.Base(f)]; ok {
				exec.OriginalExecution = workflow.Execution{ID: id,
					RunID: hist.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId()}
			}
			require.NoError(t, r.ReplayWorkflowHistoryWithOptions(logger, hist, exec))
		})
	}
}

// recordedIDs are the workflow IDs of recorded histories whose decisions
// are signed (the exported JSON carries only the run).
var recordedIDs = map[string]string{
	"v2-nonhuman-signed-before-hardening.json": "joiner-nhi-reporting-sync-production",
	"v4-pseudonymous-completed.json":           "joiner-2697",
	"v5-continued-awaiting-approval.json":      "joiner-3229",
}

// TestRecordedHistoriesHoldNoSecrets scans the committed histories (payloads
// decoded) for Vault tokens, SecretIDs and the dev stack's credentials: the
// workflow passes paths and accessors, never values.
func TestRecordedHistoriesHoldNoSecrets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "histories", "*.json"))
	require.NoError(t, err)
	forbidden := []*regexp.Regexp{
		regexp.MustCompile(`hv[sbr]\.[A-Za-z0-9_-]{20,}`), // Vault service, batch and recovery tokens (incl. wrapping tokens)
		regexp.MustCompile(`"secret_id"`),
		regexp.MustCompile(`dev-ldap-admin|dev-hris-key|dev-webhook-secret`),
		regexp.MustCompile(`(?i)"password"\s*:`),
	}
	b64 := regexp.MustCompile(`"data":\s*"([A-Za-z0-9+/=]+)"`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		text := string(raw)
		for _, m := range b64.FindAllStringSubmatch(text, -1) {
			if dec, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
				text += "\n" + string(dec)
			}
		}
		for _, re := range forbidden {
			require.Falsef(t, re.MatchString(text), "%s contains %s: %q", filepath.Base(f), re, re.FindString(text))
		}
	}
}

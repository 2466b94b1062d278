package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// itConfig is the dev stack's configuration with a task queue of this test
// alone: no worker runs these joiners; the test terminates them.
func itConfig(t *testing.T) (config.Config, client.Client) {
	t.Helper()
	ep := stacktest.Ensure(t)
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	cfg.TemporalAddress, cfg.TemporalNamespace, cfg.TemporalUIURL = ep.TemporalAddress, ep.TemporalNamespace, ep.TemporalUIURL
	cfg.TaskQueue = "it-starter-" + randHex(5)
	cfg.HRISWebhookSecret = "it-serve-secret"
	cfg.IntakeToken = "it-serve-token"
	cfg.HRISURL, cfg.HRISCompany, cfg.HRISAPIKey = ep.HRISURL, ep.HRISCompany, ep.HRISAPIKey
	// No worker runs the hold on this queue: the dev policy without its
	// blast radius (TestIntegrationHoldCommand has one, with a worker).
	cfg.PolicyFile = policyWith(t, "intake:\n  max_days_since_hire: 0\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Temporal of the dev stack is not reachable: %v", err)
	}
	t.Cleanup(c.Close)
	return cfg, c
}

// policyWith writes the dev policy with its intake section replaced by
// intake and returns the file's path.
func policyWith(t *testing.T, intake string) string {
	t.Helper()
	b, err := os.ReadFile("../testdata/policy/default.yaml")
	require.NoError(t, err)
	head, _, ok := strings.Cut(string(b), "\nintake:")
	require.True(t, ok, "the dev policy has an intake section")
	p := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(p, []byte(head+"\n"+intake), 0o600))
	return p
}

// hire enters a pending hire in the reference HRIS (the HR record decides
// who gets a joiner) and returns its ID.
func hire(t *testing.T, cfg config.Config, employmentStatus string) string {
	t.Helper()
	hc, err := hris.New(hris.Config{BaseURL: cfg.HRISURL, Company: cfg.HRISCompany, APIKey: cfg.HRISAPIKey, Timeout: 10 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := hc.AddEmployee(ctx, map[string]string{"firstName": "Starter", "lastName": "Test" + randHex(3),
		"hireDate": time.Now().AddDate(0, 1, 0).Format(time.DateOnly), "status": "Active",
		"employmentHistoryStatus": employmentStatus, "department": "Engineering", "supervisorEId": "100"})
	require.NoError(t, err)
	return id
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func terminateLater(t *testing.T, c client.Client, ids ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range ids {
			err := c.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(id), "", "starter integration test cleanup")
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				t.Errorf("terminate %s: %v", id, err)
			}
		}
	})
}

// joinerStatus is the joiner's execution status, or 0 when none exists.
func joinerStatus(t *testing.T, c client.Client, id string) enumspb.WorkflowExecutionStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.DescribeWorkflowExecution(ctx, workflows.JoinerWorkflowID(id), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return 0
	}
	require.NoError(t, err)
	return d.GetWorkflowExecutionInfo().GetStatus()
}

func TestIntegrationImportCommand(t *testing.T) {
	cfg, c := itConfig(t)
	p := "it-import-" + randHex(4)
	fixture, err := os.ReadFile("../testdata/intake/joiners.csv")
	require.NoError(t, err)
	dir := t.TempDir()
	file := filepath.Join(dir, "joiners.csv")
	// The rows that start need HR records of the kind the file names.
	good := []string{hire(t, cfg, "Full-Time"), hire(t, cfg, "Contractor"), hire(t, cfg, "Full-Time")}
	csv := strings.NewReplacer("{{P}}-1,", good[0]+",", "{{P}}-2,", good[1]+",", "{{P}}-3,", good[2]+",", "{{P}}", p).Replace(string(fixture))
	require.NoError(t, os.WriteFile(file, []byte(csv), 0o600))
	bad := []string{p + "-5", p + "-6", p + "-7"}
	terminateLater(t, c, good...)

	var out, errb bytes.Buffer
	code := cmdImport(context.Background(), cfg, []string{file, "--as", "it-operator", "--concurrency", "1"}, &out, &errb)
	require.Equal(t, exitFailed, code, "a file with bad rows exits 1\n%s\n%s", out.String(), errb.String())
	table := out.String()
	for _, want := range []string{
		"ROW  HR ID", good[0], "started", "bad id", "invalid", "hrisId: want 1-64 characters",
		"kind: \"robot\" is not a joiner kind", "hireDate: 2027-02-30 is not a calendar date", "email: not an e-mail address",
		"already running", "8 rows: 3 started, 1 already running, 0 already done, 4 invalid, 0 failed",
	} {
		require.Contains(t, table, want)
	}
	// stderr is not a terminal here: plain counts, no bar.
	require.Contains(t, errb.String(), "imported 8/8 rows")
	require.NotContains(t, errb.String(), "\r")
	for _, id := range good {
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, joinerStatus(t, c, id), id)
	}
	for _, id := range bad {
		require.Zero(t, joinerStatus(t, c, id), "%s must not have been started", id)
	}
	in := readInput(t, c, good[0])
	require.Equal(t, workflows.JoinerInput{HRISID: good[0], Kind: "employee", Source: "import", RequestedBy: "hr-ops"}, in)

	// A clean file whose joiners already exist: exit 0, all collapsed.
	clean := filepath.Join(dir, "again.jsonl")
	require.NoError(t, os.WriteFile(clean, []byte(fmt.Sprintf("{\"hrisId\":%q}\n{\"hrisId\":%q}\n", good[0], good[1])), 0o600))
	out.Reset()
	errb.Reset()
	code = cmdImport(context.Background(), cfg, []string{clean}, &out, &errb)
	require.Equal(t, exitOK, code, "%s\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "2 rows: 0 started, 2 already running")
}

func TestImportCommandUsage(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	var out, errb bytes.Buffer
	require.Equal(t, exitUsage, cmdImport(context.Background(), cfg, nil, &out, &errb))
	require.Equal(t, exitUsage, cmdImport(context.Background(), cfg, []string{"joiners.xlsx"}, &out, &errb))
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("hrisId,salary\n1,2\n"), 0o600))
	errb.Reset()
	require.Equal(t, exitFailed, cmdImport(context.Background(), cfg, []string{bad}, &out, &errb))
	require.Contains(t, errb.String(), `unknown column "salary"`)
	empty := filepath.Join(dir, "empty.csv")
	require.NoError(t, os.WriteFile(empty, []byte("hrisId\n"), 0o600))
	errb.Reset()
	require.Equal(t, exitFailed, cmdImport(context.Background(), cfg, []string{empty}, &out, &errb))
	require.Contains(t, errb.String(), "no rows")
}

func readInput(t *testing.T, c client.Client, id string) workflows.JoinerInput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, workflows.JoinerWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := it.Next()
	require.NoError(t, err)
	var in workflows.JoinerInput
	require.NoError(t, json.Unmarshal(ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0].GetData(), &in))
	return in
}

// TestIntegrationServeCommand builds the starter, runs `starter serve` on a
// free port against the dev stack, starts a joiner through it, then sends
// the process SIGINT: it must shut down gracefully and exit 0.
func TestIntegrationServeCommand(t *testing.T) {
	cfg, c := itConfig(t)
	bin := filepath.Join(t.TempDir(), "starter")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./starter: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	id := hire(t, cfg, "Full-Time")
	terminateLater(t, c, id)

	var logs syncWriter
	// The intake alone: the inbox beside it is TestIntegrationServeRunsTheInbox's.
	cmd := exec.Command(bin, "serve", "--inbox-addr=")
	cmd.Env = append(os.Environ(),
		"JOINERY_TEMPORAL_ADDRESS="+cfg.TemporalAddress, "JOINERY_TEMPORAL_NAMESPACE="+cfg.TemporalNamespace,
		"JOINERY_TEMPORAL_UI_URL="+cfg.TemporalUIURL, "JOINERY_TASK_QUEUE="+cfg.TaskQueue, "JOINERY_INTAKE_ADDR="+addr,
		"JOINERY_INTAKE_TOKEN="+cfg.IntakeToken, "JOINERY_HRIS_WEBHOOK_SECRET="+cfg.HRISWebhookSecret, "JOINERY_LOG_LEVEL=info",
		"JOINERY_POLICY_FILE="+cfg.PolicyFile, "JOINERY_HRIS_URL="+cfg.HRISURL, "JOINERY_HRIS_COMPANY="+cfg.HRISCompany,
		"JOINERY_HRIS_API_KEY="+cfg.HRISAPIKey)
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "serve did not become ready: %s", logs.String())

	r, _ := http.NewRequest(http.MethodPost, base+"/joiners", strings.NewReader(`{"hrisId":"`+id+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+cfg.IntakeToken)
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, joinerStatus(t, c, id))

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "serve must exit 0 after SIGINT\n%s", logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop after SIGINT: %s", logs.String())
	}
	out := logs.String()
	require.Contains(t, out, `"msg":"intake shutting down"`)
	require.Contains(t, out, `"hris_id":"`+id+`"`)
	require.NotContains(t, out, cfg.IntakeToken)
	require.NotContains(t, out, cfg.HRISWebhookSecret)
}

// TestLongRunningContext: serve and import outlive the bound runCLI puts on
// operator commands; they stop when their context is cancelled, never when a
// deadline passes.
func TestLongRunningContext(t *testing.T) {
	for _, name := range []string{"serve", "import"} {
		parent, cancel := context.WithCancel(context.Background())
		ctx, stop := commandContext(parent, name)
		_, hasDeadline := ctx.Deadline()
		require.False(t, hasDeadline, "the deadline must not end a long-running command (%s)", name)
		require.NoError(t, ctx.Err())
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("cancelling the parent must end a long-running command (%s)", name)
		}
		stop()
	}
	ctx, stop := commandContext(context.Background(), "status")
	defer stop()
	_, hasDeadline := ctx.Deadline()
	require.True(t, hasDeadline, "operator commands stay bounded")
}

// syncWriter is an io.Writer safe for the server's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestProgress(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain, 25)
	for n := 1; n <= 25; n++ {
		p.update(n)
	}
	p.done(25)
	require.Equal(t, "imported 2/25 rows\nimported 4/25 rows\nimported 6/25 rows\nimported 8/25 rows\nimported 10/25 rows\n"+
		"imported 12/25 rows\nimported 14/25 rows\nimported 16/25 rows\nimported 18/25 rows\nimported 20/25 rows\n"+
		"imported 22/25 rows\nimported 24/25 rows\nimported 25/25 rows\n", plain.String())

	var small bytes.Buffer
	p = newProgress(&small, 3)
	for n := 1; n <= 3; n++ {
		p.update(n)
	}
	p.done(3)
	require.Equal(t, "imported 3/3 rows\n", small.String())

	var term bytes.Buffer
	p = newProgress(&term, 4)
	p.terminal = true
	for n := 1; n <= 4; n++ {
		p.update(n)
	}
	p.done(4)
	require.True(t, strings.HasPrefix(term.String(), "\r[======="), term.String())
	require.True(t, strings.HasSuffix(term.String(), "\r[==============================] 4/4 rows\n"), term.String())
}

// `starter start` on records that are not pending hires: refused, nothing
// started. (The exit code is start's: exitFailed until it maps
// run.ErrNotEligible to its own.)
func TestIntegrationStartRefusesNonPendingRecords(t *testing.T) {
	cfg, c := itConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"102"}, "(inactive)"},
		{[]string{"200", "--kind", "service-account"}, "(kind-mismatch)"},
		{[]string{"200", "--kind", "contractor"}, "(kind-mismatch)"},
	} {
		var out, errb bytes.Buffer
		code := cmdStart(context.Background(), cfg, tc.args, &out, &errb)
		require.NotEqual(t, exitOK, code, tc.args)
		require.Contains(t, errb.String(), "not eligible for a joiner "+tc.want, tc.args)
	}
	require.Zero(t, joinerStatus(t, c, "102"))
	require.Zero(t, joinerStatus(t, c, "200"))
}

// `starter hold list|release|discard` against the real Temporal, with a
// blast radius of one start per hour.
func TestIntegrationHoldCommand(t *testing.T) {
	cfg, c := itConfig(t)
	cfg.PolicyFile = policyWith(t, "intake:\n  blast_radius:\n    window: 1h\n    max_starts: 1\n    max_rescinds: 1\n")
	// No worker of the test's own: import and hold host the hold
	// themselves while they run, as serve does.
	holdID := "it-hold-" + randHex(5)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.TerminateWorkflow(ctx, holdID, "", "test cleanup")
	})

	ids := []string{hire(t, cfg, "Full-Time"), hire(t, cfg, "Full-Time"), hire(t, cfg, "Full-Time"), hire(t, cfg, "Full-Time")}
	terminateLater(t, c, ids...)
	file := filepath.Join(t.TempDir(), "burst.csv")
	require.NoError(t, os.WriteFile(file, []byte("hrisId\n"+strings.Join(ids, "\n")+"\n"), 0o600))
	cli := func(cmd command, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cmd(context.Background(), cfg, append(args, "--hold-id", holdID), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := cli(cmdImport, file, "--concurrency", "1")
	require.Equal(t, exitOK, code, "held rows are accepted\n%s\n%s", out, errOut)
	require.Contains(t, out, "4 rows: 1 started, 0 already running, 0 already done, 0 invalid, 0 failed, 0 refused, 3 held")
	require.Contains(t, out, "hold start:"+ids[1])
	for _, id := range ids[1:] {
		require.Zero(t, joinerStatus(t, c, id), "held, not started")
	}

	code, out, _ = cli(cmdHold, "list")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "window 1h0m0s: 1/1 starts")
	require.Contains(t, out, "3 held")
	require.Contains(t, out, "start:"+ids[2])

	// Usage: who decides is said, not guessed.
	code, _, _ = cli(cmdHold, "release", "--all")
	require.Equal(t, exitUsage, code)
	code, _, _ = cli(cmdHold, "discard", ids[3], "--as", "ops")
	require.Equal(t, exitUsage, code, "a discard needs a reason")

	code, out, errOut = cli(cmdHold, "release", ids[1], "--as", "ops.alice")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "start:"+ids[1]+"  started")
	code, out, _ = cli(cmdHold, "discard", "start:"+ids[3], "--as", "ops.bob", "--reason", "duplicate import")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "discarded by ops.bob")
	code, out, _ = cli(cmdHold, "release", "--all", "--as", "ops.alice")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "start:"+ids[2]+"  started")
	code, out, _ = cli(cmdHold, "release", "--all", "--as", "ops.alice")
	require.Equal(t, exitOK, code)
	require.NotContains(t, out, "started", "a second release starts nothing")

	for _, id := range ids[:3] {
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, joinerStatus(t, c, id), id)
	}
	require.Zero(t, joinerStatus(t, c, ids[3]), "discarded: never started")
	code, out, _ = cli(cmdHold, "list", "--json")
	require.Equal(t, exitOK, code)
	var v workflows.HoldView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.Empty(t, v.Held)
	require.Len(t, v.Log, 3)
	require.Equal(t, "discarded", v.Log[1].Decision)
	require.Equal(t, "ops.bob", v.Log[1].By)
	require.Equal(t, "duplicate import", v.Log[1].Reason)
}

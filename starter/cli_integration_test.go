package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/audit"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/workflows"
)

// cli runs the starter in-process with the environment pointing at the stack
// and the harness's task queue, returning exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runCLI(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func setEnv(t *testing.T, h *e2e.Harness) {
	for _, kv := range stack.Env(h.EP) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("JOINERY_TASK_QUEUE", h.Cfg.TaskQueue)
	// start reads the policy now (eligibility); tests run in starter/.
	t.Setenv("JOINERY_POLICY_FILE", h.Cfg.PolicyFile)
}

// Every operator command end to end on the real stack, with the exit codes
// a shell script relies on.
func TestCLIEndToEnd(t *testing.T) {
	h := e2e.NewHarness(t)
	setEnv(t, h)
	id := h.Hire("Grace", "Brewster")

	code, out, errOut := cli(t, "start", id, "--as", "it-operator")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "joiner-"+id+": started")
	code, out, _ = cli(t, "start", id)
	require.Equal(t, exitRefused, code, "a second start collapses onto the first")
	require.Contains(t, out, "already running")

	// Found by stage and manager, the way the Web UI filters.
	require.Eventually(t, func() bool {
		code, out, _ := cli(t, "list", "--stage", "awaiting-approval", "--manager", "ada.lovelace", "--json")
		if code != exitOK {
			return false
		}
		var rows []run.Row
		if json.Unmarshal([]byte(out), &rows) != nil {
			return false
		}
		for _, r := range rows {
			// JoinerManager holds ada's pseudonym; the CLI translated her name
			// for the query and shows it for the rows it found.
			if r.HRISID == id && r.Stage == "AwaitingApproval" && r.Department == "Engineering" && r.Manager == "ada.lovelace" {
				return true
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "joiner %s not found by stage and manager", id)

	code, out, _ = cli(t, "status", id)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "AwaitingApproval")
	require.Contains(t, out, "all-staff")

	// Decisions go through the inbox with the person's own password.
	startInbox(t, h)
	// Someone in the directory who is not the approver: the inbox refuses
	// and signs nothing. Someone not in the directory cannot sign in.
	code, _, errOut = cliAs(t, "dev-grace-pass", "approve", id, "--as", "grace.hopper", "--wait")
	require.Equal(t, exitRefused, code, errOut)
	require.Contains(t, errOut, "no such joiner waiting for grace.hopper")
	code, _, errOut = cliAs(t, "guess", "approve", id, "--as", "mallory", "--wait")
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "invalid username or password")
	// A name typed into a signal, bypassing the inbox, proves nothing: the
	// joiner records the refusal.
	require.NoError(t, run.Signal(context.Background(), h.C, id, workflows.SignalApprove, workflows.ApprovalSignal{Approver: "mallory"}))
	code, out, errOut = cliAs(t, "dev-ada-pass", "approve", id, "--as", "ada.lovelace", "--comment", "welcome", "--wait")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "approved by ada.lovelace")

	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome)

	code, out, _ = cli(t, "status", id, "--json")
	require.Equal(t, exitOK, code)
	var st struct {
		Result workflows.JoinerResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, res.Username, st.Result.Username)

	code, out, _ = cli(t, "audit", id, "--json")
	require.Equal(t, exitOK, code)
	var rec audit.Record
	require.NoError(t, json.Unmarshal([]byte(out), &rec))
	require.Equal(t, "completed", rec.Status)
	require.Equal(t, res.PolicyVersion, rec.PolicyVersion)
	require.Equal(t, "it-operator", rec.Input.RequestedBy)
	var refused, created, ruleNamed bool
	for _, e := range rec.Timeline {
		refused = refused || (e.Kind == "decision" && strings.Contains(e.What, "mallory REFUSED"))
		created = created || (e.Kind == "created" && strings.Contains(e.What, res.DN))
		ruleNamed = ruleNamed || (e.Kind == "policy" && strings.Contains(e.What, "granted by rule"))
	}
	require.True(t, refused, "the refused approval is in the audit record")
	require.True(t, created, "the directory entry is in the audit record")
	require.True(t, ruleNamed, "each group names the rule that granted it")
	code, out, _ = cli(t, "audit", id)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "granted by rule")

	// The joiner is done: a rescind is refused and points to the leaver
	// process; a new start says so.
	code, _, errOut = cli(t, "rescind", id, "--as", "hr")
	require.Equal(t, exitRefused, code)
	require.Contains(t, errOut, "leaver process")
	code, out, _ = cli(t, "start", id)
	require.Equal(t, exitRefused, code)
	require.Contains(t, out, "already done")
}

func TestCLIBadInputStartsNothing(t *testing.T) {
	h := e2e.NewHarness(t)
	setEnv(t, h)
	for _, args := range [][]string{
		{"start", "../../etc"},
		{"start", "12 3"},
		{"start", "123", "--kind", "robot"},
	} {
		code, _, errOut := cli(t, args...)
		require.Equal(t, exitFailed, code, "%v", args)
		require.NotEmpty(t, errOut)
	}
	for _, args := range [][]string{
		{}, {"nope"}, {"start"}, {"approve", "1", "--break-glass"}, {"approve", "1", "--as"}, {"move-start", "1", "tomorrow"},
		{"list", "--stage", "sleeping"}, {"list", "--manager", `x" OR 1=1`}, {"status"}, {"audit"},
	} {
		code, _, _ := cli(t, args...)
		require.Equal(t, exitUsage, code, "%v", args)
	}
	_, err := h.C.DescribeWorkflowExecution(context.Background(), "joiner-123", "")
	require.Error(t, err, "nothing was started for bad input")
}

// request, list --expiring-within, extend and revoke end to end.
func TestCLINonHuman(t *testing.T) {
	h := e2e.NewHarness(t)
	setEnv(t, h)
	name := fmt.Sprintf("it-cli-%d", rand.IntN(1e6))
	key := workflows.NonHumanKey(name, "staging")
	t.Cleanup(func() {
		_ = h.C.TerminateWorkflow(context.Background(), workflows.JoinerWorkflowID(key), "", "test ended")
	})
	until := time.Now().UTC().AddDate(0, 0, 20).Format(time.DateOnly)

	code, _, errOut := cli(t, "request", "robot", name, "--sponsor", "100")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "--environment is required")
	code, out, errOut := cli(t, "request", "pipeline", name, "--sponsor", "100", "--environment", "staging",
		"--purpose", "cli test", "--until", until, "--tool", "kubectl")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, key+": started")
	// The sponsor approves through the inbox once the joiner asks her.
	startInbox(t, h)
	require.Eventually(t, func() bool {
		code, _, _ := cliAs(t, "dev-ada-pass", "approve", key, "--as", "ada.lovelace", "--wait")
		return code == exitOK
	}, 30*time.Second, 500*time.Millisecond, "the sponsor could not approve %s through the inbox", key)

	expiring := func(within string) bool {
		code, out, _ := cli(t, "list", "--kind", "pipeline", "--expiring-within", within, "--json")
		require.Equal(t, exitOK, code)
		var rows []run.Row
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		for _, r := range rows {
			if r.HRISID == key {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return expiring("30d") }, 30*time.Second, 200*time.Millisecond, "not listed as expiring within 30d")
	require.False(t, expiring("7d"))

	code, out, _ = cli(t, "status", key)
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "owner")
	require.Contains(t, out, "secret/data/workloads/"+name+"/staging/*")

	later := time.Now().UTC().AddDate(0, 0, 60).Format(time.DateOnly)
	code, _, errOut = cliAs(t, "dev-ada-pass", "extend", key, later, "--as", "ada.lovelace", "--comment", "still needed")
	require.Equal(t, exitOK, code, errOut)
	require.Eventually(t, func() bool { return !expiring("30d") }, 30*time.Second, 200*time.Millisecond, "the extension did not move the expiry")

	code, _, _ = cli(t, "revoke", key, "--as", "security", "--reason", "cli test")
	require.Equal(t, exitOK, code)
	res, err := h.Result(key)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRevoked, res.Outcome)
	require.Equal(t, later, res.EndDate)
	require.Equal(t, []string{"kubectl"}, res.Tools)
}

// move-start on a joiner waiting for its date, then reject.
func TestCLIMoveStartAndReject(t *testing.T) {
	h := e2e.NewHarness(t)
	setEnv(t, h)
	hire := time.Now().UTC().AddDate(0, 0, 30)
	id := h.HireOn("Mary", "Jackson", hire.Format(time.DateOnly))
	code, _, errOut := cli(t, "start", id)
	require.Equal(t, exitOK, code, errOut)
	statusJSON := func() workflows.Status {
		code, out, _ := cli(t, "status", id, "--json")
		require.Equal(t, exitOK, code)
		var v struct {
			Status workflows.Status `json:"status"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &v))
		return v.Status
	}
	require.Eventually(t, func() bool { return statusJSON().Stage == workflows.StageWaitingStartDate }, 30*time.Second, 100*time.Millisecond)
	before := *statusJSON().ProvisionAt

	// A date HR does not have moves nothing (anyone with Temporal access
	// could send it); once HR has it, the same command moves the timer.
	later := hire.AddDate(0, 0, 14).Format(time.DateOnly)
	code, out, _ := cli(t, "move-start", id, time.Now().UTC().Format(time.DateOnly), "--as", "mallory")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "only if the HR record says so")
	time.Sleep(time.Second)
	require.Equal(t, before, *statusJSON().ProvisionAt, "a date HR does not have moves nothing")
	require.NoError(t, h.HR.UpdateFields(context.Background(), id, map[string]string{"hireDate": later}))
	code, _, _ = cli(t, "move-start", id, later, "--as", "hr.partner")
	require.Equal(t, exitOK, code)
	require.Eventually(t, func() bool {
		st := statusJSON()
		return st.ProvisionAt != nil && st.ProvisionAt.Sub(before) == 14*24*time.Hour
	}, 30*time.Second, 100*time.Millisecond, "the provisioning timer moved by the same 14 days")

	startInbox(t, h)
	code, _, errOut = cliAs(t, "dev-ada-pass", "reject", id, "--as", "ada.lovelace", "--comment", "role withdrawn", "--wait")
	require.Equal(t, exitOK, code, errOut)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRejected, res.Outcome, "an early rejection ends the joiner without waiting for the date")
	require.Empty(t, res.Resources, "nothing was created")
}

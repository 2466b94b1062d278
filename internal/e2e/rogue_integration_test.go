package e2e

// A rogue on the real stack: a worker of its own, on its own task queue,
// whose workflows schedule Joinery's activities by name on the harness's
// task queue with inputs of their choosing — what any holder of Temporal
// access can do. Each order is refused, and LDAP, Vault and the HRIS are
// unchanged.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// rogueOrder is one activity the rogue schedules on Joinery's queue.
type rogueOrder struct {
	Activity string         `json:"activity"`
	Input    map[string]any `json:"input"`
}

// rogueOutcome is what became of it: the application error type ("" when
// the activity ran) and its message.
type rogueOutcome struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// rogueWorkflow runs one order on queue with a single attempt.
func rogueWorkflow(queue string) func(ctx workflow.Context, o rogueOrder) (rogueOutcome, error) {
	return func(ctx workflow.Context, o rogueOrder) (rogueOutcome, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: queue, StartToCloseTimeout: 30 * time.Second,
			ScheduleToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		err := workflow.ExecuteActivity(ctx, o.Activity, o.Input).Get(ctx, nil)
		if err == nil {
			return rogueOutcome{}, nil
		}
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return rogueOutcome{Type: ae.Type(), Message: ae.Error()}, nil
		}
		return rogueOutcome{Type: "other", Message: err.Error()}, nil
	}
}

func rawLDAPEntry(t *testing.T, url, dn string) []string { return stacktest.RawEntry(t, url, dn) }

func TestRogueWorkflowsCannotOrderJoineryActivities(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	base := h.EP.LDAPBaseDN
	adaDN := "uid=ada.lovelace,ou=people," + base
	finance := "cn=finance,ou=groups," + base
	evilKey := fmt.Sprintf("nhi-evil-%d-production", rand.IntN(1e6))
	// A real pending hire, so the directory would accept a claim for it:
	// only the order check stands between the rogue and a new account.
	hire := h.Hire("Rogue", "Target")

	rogueQueue := fmt.Sprintf("rogue-%d", rand.IntN(1e9))
	w := worker.New(h.C, rogueQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(rogueWorkflow(h.Cfg.TaskQueue), workflow.RegisterOptions{Name: "Evil"})
	// The same rogue under Joinery's workflow type, with a joiner's ID:
	// the caller check passes, the re-plan and the markers do not.
	w.RegisterWorkflowWithOptions(rogueWorkflow(h.Cfg.TaskQueue), workflow.RegisterOptions{Name: activities.JoinerWorkflowType})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	adaBefore := rawLDAPEntry(t, h.EP.LDAPURL, adaDN)
	require.NotEmpty(t, adaBefore)
	inFinance, err := h.Dir.IsMember(ctx, finance, adaDN)
	require.NoError(t, err)
	hrBefore, err := h.HR.GetFields(ctx, "100", []string{"workEmail", "customUsername"})
	require.NoError(t, err)

	workload := map[string]any{"grants": []map[string]any{{"path": "sys/*", "capabilities": []string{"sudo", "create", "update"}}},
		"tokenTTL": int64(time.Hour), "secretIdNumUses": 0, "wrapTTL": int64(time.Hour)}
	orders := []struct {
		name   string
		wfType string
		wfID   string
		order  rogueOrder
	}{
		{"grant finance to Ada", "Evil", "evil-grant", rogueOrder{"GrantGroup", map[string]any{"hrisId": "100", "group": "finance", "memberDn": adaDN}}},
		{"password on Ada's DN", "Evil", "evil-password", rogueOrder{"IssueCredential", map[string]any{
			"hrisId": "100", "username": "ada.lovelace", "dn": adaDN, "recipient": "mallory", "wrapTtl": int64(time.Hour)}}},
		{"workload of its choosing", "Evil", "evil-workload", rogueOrder{"IssueWorkloadCredential", map[string]any{
			"key": evilKey, "kind": "service-account", "username": "evil", "recipient": "ada.lovelace", "workload": workload}}},
		{"claim of its choosing", "Evil", "evil-claim", rogueOrder{"ClaimAccount", map[string]any{
			"hrisId": "100", "candidates": []string{"evil.root"}, "worker": map[string]any{"firstName": "Evil"}}}},
		{"write-back of its choosing", "Evil", "evil-writeback", rogueOrder{"WriteBack", map[string]any{
			"hrisId": "100", "want": map[string]string{"workEmail": "mallory@evil.test"}, "expected": map[string]string{}}}},
		{"delete Ada", "Evil", "evil-delete", rogueOrder{"DeleteAccount", map[string]any{"hrisId": "100", "dn": adaDN}}},
		// Reads change nothing, but they would hand HR's personal data to
		// whoever asks.
		{"read Ada's HR record", "Evil", "evil-fetch", rogueOrder{"FetchJoiner", map[string]any{"hrisId": "100"}}},
		{"read Ada's HR fields", "Evil", "evil-snapshot", rogueOrder{"SnapshotHRIS", map[string]any{"hrisId": "100", "fields": []string{"workEmail", "mobilePhone"}}}},

		// As "Joiner" with Ada's joiner ID: finance is not in her plan; her
		// entry carries no joiner's marker, so no password lands on it.
		{"joiner-100 grants finance", activities.JoinerWorkflowType, "joiner-100", rogueOrder{"GrantGroup", map[string]any{"hrisId": "100", "group": "finance", "memberDn": adaDN}}},
		{"joiner-100 sets Ada's password", activities.JoinerWorkflowType, "joiner-100", rogueOrder{"IssueCredential", map[string]any{
			"hrisId": "100", "username": "ada.lovelace", "dn": adaDN, "recipient": "mallory", "wrapTtl": int64(time.Hour)}}},
		{"joiner-100 reads her HR record", activities.JoinerWorkflowType, "joiner-100", rogueOrder{"FetchJoiner", map[string]any{"hrisId": "100"}}},
		{"joiner-100 claims evil.root", activities.JoinerWorkflowType, "joiner-100", rogueOrder{"ClaimAccount", map[string]any{
			"hrisId": "100", "candidates": []string{"evil.root"}}}},
		{"joiner-<hire> claims evil.root", activities.JoinerWorkflowType, "joiner-" + hire, rogueOrder{"ClaimAccount", map[string]any{
			"hrisId": hire, "candidates": []string{"evil.root"}, "worker": map[string]any{"firstName": "Evil"}}}},
		// The hire's own plan, exactly, but no approval ever happened: the
		// claim re-verifies the signed approvals and creates nothing.
		{"joiner-<hire> claims its planned username unapproved", activities.JoinerWorkflowType, "joiner-" + hire, rogueOrder{"ClaimAccount", map[string]any{
			"hrisId": hire, "candidates": []string{"rogue.target"}, "worker": map[string]any{"firstName": "Rogue", "lastName": "Target"}}}},
		{"joiner-<hire> claims with a forged approval", activities.JoinerWorkflowType, "joiner-" + hire, rogueOrder{"ClaimAccount", map[string]any{
			"hrisId": hire, "candidates": []string{"rogue.target"}, "worker": map[string]any{"firstName": "Rogue", "lastName": "Target"},
			"approvals": []map[string]any{{"signed": map[string]any{"keyId": "ed25519:0000000000000000", "payload": "e30=", "signature": "AAAA"}}}}}},
		{"joiner-<evil> issues its workload", activities.JoinerWorkflowType, "joiner-" + evilKey, rogueOrder{"IssueWorkloadCredential", map[string]any{
			"key": evilKey, "kind": "service-account", "username": "evil", "recipient": "ada.lovelace", "workload": workload}}},
	}
	// A rogue "Joiner" runs on a queue of its own: the server says so, and
	// that alone refuses every order, whatever it names (a DN of a live
	// account, the hire's exact plan, a forged approval). The approval and
	// plan checks behind it are proven in activities/approval_proof_test.go
	// and orders_test.go.
	because := map[string]string{}
	for _, o := range orders {
		if o.wfType == activities.JoinerWorkflowType {
			because[o.name] = "not this worker's"
		}
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			id := fmt.Sprintf("%s-%d", o.wfID, rand.IntN(1e9))
			if o.wfType == activities.JoinerWorkflowType {
				id = o.wfID // the caller check compares the exact ID
			}
			run, err := h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: rogueQueue,
				WorkflowExecutionTimeout: 2 * time.Minute}, o.wfType, o.order)
			require.NoError(t, err, "a rogue with Temporal access can start this (is a real %s running?)", id)
			var out rogueOutcome
			require.NoError(t, run.Get(ctx, &out))
			require.NotEmpty(t, out.Type, "%s ran", o.order.Activity)
			require.Contains(t, []string{activities.ErrTypeOrderRefused, activities.ErrTypeNotOwner}, out.Type, out.Message)
			require.Equal(t, activities.ErrTypeOrderRefused, out.Type, out.Message)
			if why, ok := because[o.name]; ok {
				require.Contains(t, out.Message, why)
			}
		})
	}

	require.Equal(t, adaBefore, rawLDAPEntry(t, h.EP.LDAPURL, adaDN), "Ada's entry (password hash included) is unchanged")
	now, err := h.Dir.IsMember(ctx, finance, adaDN)
	require.NoError(t, err)
	require.Equal(t, inFinance, now, "finance membership unchanged")
	require.Nil(t, rawLDAPEntry(t, h.EP.LDAPURL, "uid=evil.root,ou=people,"+base), "no claimed entry")
	e, err := h.Dir.FindByEmployeeID(ctx, hire, false)
	require.NoError(t, err)
	require.Nil(t, e, "no entry for the pending hire")
	hrAfter, err := h.HR.GetFields(ctx, "100", []string{"workEmail", "customUsername"})
	require.NoError(t, err)
	require.Equal(t, hrBefore, hrAfter, "HR record unchanged")
	root := vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken)
	role, pol := activities.WorkloadNames(evilKey)
	r, err := root.Logical().Read("auth/approle/role/" + role)
	require.NoError(t, err)
	require.Nil(t, r, "no AppRole")
	p, err := root.Sys().GetPolicy(pol)
	require.NoError(t, err)
	require.Empty(t, p, "no policy")
}

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/workflows"
)

// sweepStack is a reconciler (the worker's identity) and a sweeper (its
// own AppRole, from the dev stack's files) on private queues.
type sweepStack struct {
	recQueue, sweepQueue string
	sweep                *activities.Sweep
}

// sweeperOn starts both. The sweeper sees every token an hour older than
// Vault says, so the test's tokens count as old without waiting out the
// minimum age; the
// tests scope every run to their own keys, so the shift never reaches
// another test's tokens on the shared Vault.
func sweeperOn(t *testing.T, h *Harness) sweepStack {
	t.Helper()
	ctx := context.Background()
	ss := sweepStack{recQueue: h.Cfg.TaskQueue + "-rec", sweepQueue: h.Cfg.TaskQueue + "-sweep"}
	rec := run.NewReconcile(h.Acts, h.C, nil)
	rec.TaskQueue = h.Cfg.TaskQueue
	rec.SweeperQueue = ss.sweepQueue
	w := worker.New(h.C, ss.recQueue, worker.Options{})
	run.RegisterReconciler(w, rec)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	roleID, err := os.ReadFile(stack.VaultSweeperRoleIDFile(h.EP.StateDir))
	require.NoError(t, err, "the dev stack installs the sweeper's identity")
	sid, err := os.ReadFile(stack.VaultSweeperSecretIDFile(h.EP.StateDir))
	require.NoError(t, err)
	vc, err := secrets.New(ctx, secrets.Config{Addr: h.EP.VaultAddr, RoleID: strings.TrimSpace(string(roleID)),
		SecretID: strings.TrimSpace(string(sid)), KVMount: h.Cfg.VaultKVMount})
	require.NoError(t, err)
	ss.sweep = &activities.Sweep{Vault: vc, Runs: h.C, JoinerQueue: ss.recQueue,
		AgeOf: func(t secrets.WrapToken) time.Duration { return t.Age + time.Hour }}
	sw := worker.New(h.C, ss.sweepQueue, worker.Options{})
	run.RegisterSweeper(sw, ss.sweep)
	require.NoError(t, sw.Start())
	t.Cleanup(sw.Stop)
	return ss
}

// orphanToken does what a worker killed right after Vault's answer to
// the wrapped read leaves behind: a version stored, a live wrapping token
// for it, and nothing in the ledger or its index. It returns the token's
// accessor.
func orphanToken(t *testing.T, h *Harness, key string) string {
	t.Helper()
	ctx := context.Background()
	path := h.Sec.JoinerPath(key, secrets.InitialCredentialName)
	stored, err := h.Sec.Put(ctx, path, map[string]any{"password": "not-a-real-one"}, map[string]string{"joiner": key})
	require.NoError(t, err)
	_, ho, err := h.Sec.Wrap(ctx, path, stored.Version, time.Hour)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = h.Sec.RevokeInitialCredential(context.Background(), path, "")
		// Unrecorded, so the rollback cannot end it: revoke it as root, in
		// case the test failed before the sweep did.
		_, _ = vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken).Logical().Write("auth/token/revoke-accessor", map[string]any{"accessor": ho.WrapAccessor})
	})
	return ho.WrapAccessor
}

// recordedToken issues a credential the normal way: its handover is in the
// ledger.
func recordedToken(t *testing.T, h *Harness, key string) string {
	t.Helper()
	ctx := context.Background()
	noop := func(context.Context, string) error { return nil }
	ho, err := h.Sec.IssueInitialCredential(ctx, key, map[string]string{"username": "sweep.test"}, time.Hour, noop, noop)
	require.NoError(t, err)
	path := h.Sec.JoinerPath(key, secrets.InitialCredentialName)
	t.Cleanup(func() { _ = h.Sec.RevokeInitialCredential(context.Background(), path, "") })
	return ho.WrapAccessor
}

func tokenAlive(t *testing.T, root *vault.Client, accessor string) bool {
	t.Helper()
	s, err := root.Logical().Write("auth/token/lookup-accessor", map[string]any{"accessor": accessor})
	if err != nil {
		require.Contains(t, err.Error(), "invalid accessor", "a lookup fails only because the token is gone")
		return false
	}
	return s != nil
}

// The crash window the worker cannot close: a wrapping token Vault created
// whose accessor never reached the ledger. The sweep finds it, leaves the
// recorded one (a manager's pending handover) alone, a dry run changes
// nothing, and a second run finds nothing left.
func TestSweeperRevokesAnUnrecordedWrappingTokenOnTheRealStack(t *testing.T) {
	h := NewHarness(t)
	root := vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken)
	ss := sweeperOn(t, h)
	n := rand.IntN(1e9)
	orphanKey, recKey := fmt.Sprintf("sweep-o-%d", n), fmt.Sprintf("sweep-r-%d", n)
	orphan := orphanToken(t, h, orphanKey)
	recorded := recordedToken(t, h, recKey)
	keys := []string{orphanKey, recKey}

	dry := reconcile(t, h, ss.recQueue, workflows.ReconcileInput{DryRun: true, Keys: keys})
	require.NotNil(t, dry.Sweep, "the reconciler ran the sweep")
	require.Empty(t, dry.Sweep.Error)
	require.Len(t, dry.Sweep.Orphans, 1, "%+v", dry.Sweep)
	require.Equal(t, orphan, dry.Sweep.Orphans[0].Accessor)
	require.Equal(t, orphanKey, dry.Sweep.Orphans[0].Key)
	require.Equal(t, 1, dry.Sweep.Recorded)
	require.True(t, tokenAlive(t, root, orphan), "a dry run revokes nothing")

	rep := reconcile(t, h, ss.recQueue, workflows.ReconcileInput{Keys: keys})
	require.Empty(t, rep.Sweep.Error)
	require.Equal(t, 1, rep.Sweep.Revoked, "%+v", rep.Sweep)
	require.False(t, tokenAlive(t, root, orphan), "the orphaned wrapping token is revoked")
	require.True(t, tokenAlive(t, root, recorded), "the recorded handover stays for its recipient")

	again := reconcile(t, h, ss.recQueue, workflows.ReconcileInput{Keys: keys})
	require.Empty(t, again.Sweep.Orphans, "nothing left")
	require.Equal(t, 1, again.Sweep.Recorded)
}

// The adversary: anyone with Temporal access, scheduling the sweeper's
// activities from a workflow of their own, or from one named "Reconciler"
// on their own queue, to revoke a manager's pending handover or list
// Vault's tokens. Refused before Vault is asked. And even trusted code
// cannot make the sweeper revoke a token that is not one of Joinery's
// wrapping tokens: each accessor is looked up again first.
func TestRogueCannotUseTheSweeper(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	root := vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken)
	ss := sweeperOn(t, h)
	n := rand.IntN(1e9)
	recorded := recordedToken(t, h, fmt.Sprintf("sweep-v-%d", n))

	rogueQueue := fmt.Sprintf("rogue-sweep-%d", n)
	w := worker.New(h.C, rogueQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(rogueWorkflow(ss.sweepQueue), workflow.RegisterOptions{Name: "Evil"})
	w.RegisterWorkflowWithOptions(rogueWorkflow(ss.sweepQueue), workflow.RegisterOptions{Name: activities.JoinerWorkflowType})
	w.RegisterWorkflowWithOptions(rogueWorkflow(ss.sweepQueue), workflow.RegisterOptions{Name: activities.ReconcilerWorkflowType})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	for i, typ := range []string{"Evil", activities.JoinerWorkflowType, activities.ReconcilerWorkflowType} {
		for _, o := range []rogueOrder{
			{Activity: "SweepRevokeWrappingTokens", Input: map[string]any{"accessors": []string{recorded}}},
			{Activity: "SweepListWrappingTokens", Input: map[string]any{}},
		} {
			wr, err := h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("rogue-sweep-%d-%d-%s", n, i, o.Activity),
				TaskQueue: rogueQueue, WorkflowExecutionTimeout: time.Minute}, typ, o)
			require.NoError(t, err)
			var out rogueOutcome
			require.NoError(t, wr.Get(ctx, &out))
			require.Equal(t, activities.ErrTypeOrderRefused, out.Type, "%s calling %s: %s", typ, o.Activity, out.Message)
		}
	}
	require.True(t, tokenAlive(t, root, recorded), "the manager's handover survives every rogue order")

	// A forged answer (a list result or a backfill completed by ID by
	// someone with Temporal write access) can only hand the revoke
	// accessors: the revoke judges each from Vault, and the manager's
	// recorded handover is listed in its index.
	out, err := ss.sweep.SweepRevokeWrappingTokens(ctx, activities.SweepRevokeInput{Accessors: []string{recorded}})
	require.NoError(t, err)
	require.Empty(t, out.Revoked)
	require.Len(t, out.Skipped, 1)
	require.Contains(t, out.Skipped[0], "recorded in its handover index")
	require.True(t, tokenAlive(t, root, recorded), "a recorded handover is never revoked, whatever the sweeper is told")

	// The index's latest version deleted behind Joinery's back (a mount's
	// delete_version_after, or by hand): read as an error, never as "no
	// index", so the handover is left alone.
	index := secrets.HandoverIndexPath(secrets.CredentialLedgerPath(h.Sec.JoinerPath(fmt.Sprintf("sweep-v-%d", n), secrets.InitialCredentialName)))
	_, err = root.Logical().Delete(h.Cfg.VaultKVMount + "/data/" + index)
	require.NoError(t, err)
	out, err = ss.sweep.SweepRevokeWrappingTokens(ctx, activities.SweepRevokeInput{Accessors: []string{recorded}})
	require.Error(t, err, "its only accessor failed: Temporal retries")
	require.Empty(t, out.Revoked)
	require.Len(t, out.Failed, 1)
	require.Contains(t, out.Failed[0], "was deleted but the secret was not")
	require.True(t, tokenAlive(t, root, recorded))

	// Not Joinery's: a wrapping token for another KV path, and a plain
	// token. Asked directly (trusted code, no caller check), the sweeper
	// still looks each one up and leaves it.
	other := fmt.Sprintf("sweep-other-%d", n)
	_, err = root.Logical().Write(h.Cfg.VaultKVMount+"/data/"+other, map[string]any{"data": map[string]any{"x": "y"}})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = root.Logical().Delete(h.Cfg.VaultKVMount + "/metadata/" + other) })
	root.SetWrappingLookupFunc(func(string, string) string { return "1h" })
	ws, err := root.Logical().Read(h.Cfg.VaultKVMount + "/data/" + other)
	root.SetWrappingLookupFunc(nil)
	require.NoError(t, err)
	require.NotNil(t, ws.WrapInfo)
	plain, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = root.Auth().Token().RevokeAccessor(plain.Auth.Accessor) })
	out, err = ss.sweep.SweepRevokeWrappingTokens(ctx, activities.SweepRevokeInput{
		Accessors: []string{ws.WrapInfo.Accessor, plain.Auth.Accessor}})
	require.NoError(t, err)
	require.Empty(t, out.Revoked)
	require.Len(t, out.Skipped, 2, "%+v", out)
	require.True(t, tokenAlive(t, root, ws.WrapInfo.Accessor), "another path's wrapping token stays")
	require.True(t, tokenAlive(t, root, plain.Auth.Accessor), "a plain token stays")
}

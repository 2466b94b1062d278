package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

func vaultClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	require.NoError(t, err)
	c.SetToken(token)
	return c
}

// A non-human joiner yields an AppRole whose wrapped SecretID unwraps
// exactly once and logs in with exactly the generated policy; revoking it
// makes login fail and disables the directory entry.
func TestNonHumanAppRoleOnTheRealStack(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	name := fmt.Sprintf("it-bot-%d", rand.IntN(1e6))
	key := workflows.NonHumanKey(name, "staging")
	h.CleanupNonHuman(key)
	res, err := run.StartJoiner(ctx, h.C, h.Cfg, workflows.JoinerInput{HRISID: key, Kind: "pipeline", Source: "test",
		Request: &activities.NonHumanRequest{Name: name, SponsorID: "100", Environment: "staging", Purpose: "integration test deploys",
			StartDate: time.Now().UTC().Format(time.DateOnly), EndDate: time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)}})
	require.NoError(t, err)
	require.Equal(t, run.Started, res.Outcome)
	h.ApproveWhenAsked(key)

	var st workflows.Status
	require.Eventually(t, func() bool {
		st, _, _, err = run.Status(ctx, h.C, key)
		return err == nil && st.Stage == workflows.StageActive
	}, time.Minute, 100*time.Millisecond, "the pipeline never became active (stage %s)", st.Stage)
	require.Equal(t, "ada.lovelace", st.Owner)
	require.NotNil(t, st.Workload)

	// Directory: its own OU, no interactive login.
	e, err := h.Dir.FindByEmployeeID(ctx, key, true)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.True(t, strings.HasSuffix(e.DN, ",ou=service-accounts,"+h.EP.LDAPBaseDN), e.DN)
	require.Empty(t, e.Attributes["userPassword"])

	// The sponsor's wrapped SecretID unwraps once.
	tok, err := os.ReadFile(activities.FileInbox{Dir: h.Cfg.InboxDir}.HandoverPath("ada.lovelace", key))
	require.NoError(t, err)
	wrapped := strings.TrimSpace(string(tok))
	sec, err := unwrap(h.EP.VaultAddr, wrapped)
	require.NoError(t, err)
	secretID, _ := sec.Data["secret_id"].(string)
	require.NotEmpty(t, secretID)
	_, err = unwrap(h.EP.VaultAddr, wrapped)
	require.Error(t, err, "the wrapped SecretID unwraps exactly once")
	history := historyJSON(t, h.C, workflows.JoinerWorkflowID(key))
	require.NotContains(t, history, secretID, "the SecretID never enters workflow history")
	require.NotContains(t, history, wrapped)

	// It logs in with exactly the generated policy.
	anon := vaultClient(t, h.EP.VaultAddr, "")
	login, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": st.Workload.RoleID, "secret_id": secretID})
	require.NoError(t, err)
	require.NotNil(t, login.Auth)
	pols := slices.DeleteFunc(slices.Clone(login.Auth.TokenPolicies), func(p string) bool { return p == "default" })
	require.Equal(t, []string{st.Workload.PolicyName}, pols)
	_, err = anon.Logical().Write("auth/approle/login", map[string]any{"role_id": st.Workload.RoleID, "secret_id": secretID})
	require.Error(t, err, "secret_id_num_uses=1: the SecretID logs in once")

	root := vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken)
	inside := fmt.Sprintf("secret/data/workloads/%s/staging/app", name)
	_, err = root.Logical().Write(inside, map[string]any{"data": map[string]any{"dsn": "postgres://x"}})
	require.NoError(t, err)
	wl := vaultClient(t, h.EP.VaultAddr, login.Auth.ClientToken)
	got, err := wl.Logical().Read(inside)
	require.NoError(t, err, "a path inside the grant is readable")
	require.NotNil(t, got)
	for _, outside := range []string{
		fmt.Sprintf("secret/data/workloads/%s/production/app", name),
		"secret/data/workloads/someone-else/staging/app",
		"secret/data/joinery/joiners/" + key + "/initial-credential",
	} {
		_, err = wl.Logical().Read(outside)
		require.Error(t, err, "%s is outside the grant", outside)
		require.Contains(t, err.Error(), "403", outside)
	}
	_, err = wl.Logical().Write(inside, map[string]any{"data": map[string]any{"x": "y"}})
	require.Error(t, err, "read-only grant: no writes")

	// Revoke: the role and policy are gone, login fails, the entry is disabled.
	require.NoError(t, run.Signal(ctx, h.C, key, workflows.SignalRevoke, workflows.RescindSignal{By: "security", Reason: "test"}))
	final, err := h.Result(key)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRevoked, final.Outcome)
	role, err := root.Logical().Read("auth/approle/role/" + st.Workload.RoleName)
	require.NoError(t, err)
	require.Nil(t, role, "the AppRole is deleted")
	require.Equal(t, "joinery-workload-pipeline", st.Workload.PolicyName, "the kind's pre-created policy: shared, so not deleted")
	_, err = wl.Logical().Read(inside)
	require.Error(t, err, "a token issued before revocation has lost its permissions")
	e, err = h.Dir.FindByEmployeeID(ctx, key, true)
	require.NoError(t, err)
	require.NotNil(t, e, "the entry stays for the audit trail")
	require.Contains(t, e.Attributes["description"], directory.DisabledMarker)
	in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN("ci-deployers"), e.DN)
	require.NoError(t, err)
	require.False(t, in)
}

func TestInactiveSponsorIsRefused(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	key := workflows.NonHumanKey(fmt.Sprintf("it-orphan-%d", rand.IntN(1e6)), "staging")
	_, err := run.StartJoiner(ctx, h.C, h.Cfg, workflows.JoinerInput{HRISID: key, Kind: "service-account",
		Request: &activities.NonHumanRequest{Name: "orphan", SponsorID: "102", Environment: "staging", Purpose: "x",
			StartDate: time.Now().UTC().Format(time.DateOnly), EndDate: time.Now().UTC().AddDate(0, 0, 10).Format(time.DateOnly)}})
	require.NoError(t, err)
	res, err := h.Result(key)
	require.Error(t, err)
	require.Equal(t, workflows.OutcomeFailed, res.Outcome)
	require.Contains(t, res.Error, "not an active employee")
	e, err := h.Dir.FindByEmployeeID(ctx, key, true)
	require.NoError(t, err)
	require.Nil(t, e, "nothing was created")
}

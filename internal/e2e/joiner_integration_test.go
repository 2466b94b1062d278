package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

func TestJoinerEndToEndOnTheRealStack(t *testing.T) {
	h := NewHarness(t)
	id := h.Hire("Marie", "Curie-Skłodowska")
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome)
	require.NotEmpty(t, res.PolicyVersion)
	st, _, _, err := run.Status(context.Background(), h.C, id)
	require.NoError(t, err)
	require.Contains(t, st.Plan.Candidates, res.Username)
	require.Equal(t, "marie.curiesklodowsk", st.Plan.Candidates[0], "transliterated, stripped, cut to 20")
	require.Regexp(t, `^[a-z0-9.]+$`, res.Username, "transliterated to ASCII")

	ctx := context.Background()
	e, err := h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, res.DN, e.DN)
	for _, g := range res.Groups {
		in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN(g), res.DN)
		require.NoError(t, err)
		require.True(t, in, g)
	}
	md, found, err := h.Sec.Metadata(ctx, res.Credential.Path)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, res.Credential.Version, md.CurrentVersion)
	w, err := h.HR.GetWorker(ctx, id)
	require.NoError(t, err)
	require.Equal(t, res.Username, w.Username)
	require.Equal(t, res.Username+"@joinery.test", w.WorkEmail)

	// The manager unwraps the token exactly once and gets the password; that
	// password, and the token, appear nowhere in the workflow's history.
	inbox := activities.FileInbox{Dir: h.Cfg.InboxDir}
	tok, err := os.ReadFile(inbox.HandoverPath(res.Credential.DeliveredTo, id))
	require.NoError(t, err)
	token := strings.TrimSpace(string(tok))
	password := unwrapPassword(t, h.EP.VaultAddr, token)
	require.NotEmpty(t, password)
	history := historyJSON(t, h.C, workflows.JoinerWorkflowID(id))
	require.NotContains(t, history, password, "the initial password must never enter workflow history")
	require.NotContains(t, history, token, "the wrapping token must never enter workflow history")
	require.Contains(t, history, res.Credential.WrapAccessor, "the accessor (not secret) is recorded")
	_, err = unwrap(h.EP.VaultAddr, token)
	require.Error(t, err, "a wrapped token unwraps only once")
}

func TestTenSameNameJoinersGetTenDistinctUsernames(t *testing.T) {
	h := NewHarness(t)
	last := fmt.Sprintf("Twin%d", rand.IntN(1e6))
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, h.Hire("Alex", last))
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Start(id)
			h.ApproveWhenAsked(id)
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for _, id := range ids {
		res, err := h.Result(id)
		require.NoError(t, err, id)
		require.Equal(t, workflows.OutcomeCompleted, res.Outcome)
		require.NotContains(t, seen, res.Username, "joiners %s and %s got the same username", seen[res.Username], id)
		seen[res.Username] = id
	}
	require.Len(t, seen, 10)
}

func TestSeededCollisionGetsTheFallback(t *testing.T) {
	h := NewHarness(t)
	// john.smith and jsmith are seeded; earlier runs may hold john.smith2...
	id := h.Hire("John", "Smith")
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.NotEqual(t, "john.smith", res.Username)
	require.NotEqual(t, "jsmith", res.Username)
	require.Regexp(t, `^john\.smith\d+$`, res.Username)
	require.Contains(t, res.UsernameRule, "{n}")
}

// A failure at each step leaves no LDAP entry, group membership, Vault secret
// or HRIS change behind — checked directly against the servers — and running
// the compensations again is harmless.
func TestFailureAtEachStepLeavesNothingBehind(t *testing.T) {
	h := NewHarness(t)
	for _, step := range []string{activities.StepClaim, activities.StepGrant, activities.StepCredential, activities.StepWriteBack} {
		t.Run(step, func(t *testing.T) {
			id := h.Hire("Rosalind", "Franklin")
			h.FailAt(id, step)
			h.Start(id)
			h.ApproveWhenAsked(id)
			res, err := h.Result(id)
			require.Error(t, err)
			require.NotNil(t, res, "a failed joiner reports its final state")
			require.Equal(t, workflows.OutcomeFailed, res.Outcome)
			groups := []string{"all-staff", "engineering", "github-eu", "vpn-users"}
			require.Empty(t, h.Residue(id, groups, res.DN), "step %s", step)

			// Compensations a second time: nothing to undo, still success.
			ctx := context.Background()
			require.NoError(t, h.Acts.DeleteAccount(ctx, activities.AccountRef{HRISID: id, DN: res.DN}))
			if res.DN != "" {
				for _, g := range groups {
					require.NoError(t, h.Acts.RevokeGroup(ctx, activities.GroupInput{HRISID: id, Group: g, MemberDN: res.DN}))
				}
			}
			require.NoError(t, h.Acts.RevokeCredential(ctx, activities.RevokeInput{HRISID: id}))
			require.NoError(t, h.Acts.UndoWriteBack(ctx, activities.WriteBackInput{HRISID: id,
				Want: map[string]string{"workEmail": "", "customUsername": ""}, Expected: map[string]string{"workEmail": "x@y", "customUsername": "x"}}))
			require.Empty(t, h.Residue(id, groups, res.DN))
		})
	}
}

func TestRescindAfterProvisioningStartedRollsBack(t *testing.T) {
	h := NewHarness(t)
	id := h.Hire("Emmy", "Noether")
	h.Start(id)
	ctx := context.Background()
	require.NoError(t, run.Signal(ctx, h.C, id, workflows.SignalRescind, workflows.RescindSignal{By: "hr", Reason: "offer withdrawn"}))
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, res.Outcome)
	require.Empty(t, h.Residue(id, []string{"all-staff", "engineering"}, res.DN))
}

func historyJSON(t *testing.T, c client.Client, id string) string {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var b strings.Builder
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		j, err := json.Marshal(ev)
		require.NoError(t, err)
		b.Write(j)
		// Payloads are base64 inside the proto JSON; decode them too.
		b.WriteString(decodePayloads(string(j)))
	}
	return b.String()
}

var errUnwrap = errors.New("unwrap failed")

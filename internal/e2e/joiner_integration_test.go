package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// harness is a worker on a private task queue with the real connectors.
type harness struct {
	t    *testing.T
	ep   stack.Endpoints
	cfg  config.Config
	c    client.Client
	acts *activities.Activities
	dir  *directory.Client
	sec  *secrets.Client
	hr   *hris.Client

	mu     sync.Mutex
	faults map[string]string // hrisID -> step that must fail
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg, err := Config(ep, repo)
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("it-%s-%d", strings.ToLower(t.Name()), rand.IntN(1e9))
	cfg.TaskQueue = strings.NewReplacer("/", "-", "_", "-").Replace(cfg.TaskQueue)
	cfg.InboxDir = t.TempDir()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	acts, err := run.Activities(ctx, cfg, logger)
	require.NoError(t, err)
	h := &harness{t: t, ep: ep, cfg: cfg, acts: acts, faults: map[string]string{}}
	acts.Faults = func(step, hrisID string) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.faults[hrisID] == step {
			return fmt.Errorf("injected failure at %s", step)
		}
		return nil
	}
	h.dir = acts.Directory.(*directory.Client)
	h.sec = acts.Secrets.(*secrets.Client)
	h.hr = acts.HRIS.(*hris.Client)
	h.c, err = run.Dial(ctx, cfg, logger)
	require.NoError(t, err)
	w := worker.New(h.c, cfg.TaskQueue, worker.Options{})
	run.Register(w, acts)
	require.NoError(t, w.Start())
	t.Cleanup(func() { w.Stop(); h.c.Close() })
	return h
}

// hire enters a new hire starting today (so provisioning starts at once).
func (h *harness) hire(first, last string) string {
	h.t.Helper()
	id, err := AddEmployee(context.Background(), h.ep, map[string]string{
		"firstName": first, "lastName": last, "department": "Engineering", "jobTitle": "Engineer",
		"location": "DE-Berlin", "supervisorEId": "100", "hireDate": time.Now().Format(time.DateOnly),
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	require.NoError(h.t, err)
	return id
}

func (h *harness) start(id string) {
	h.t.Helper()
	res, err := run.StartJoiner(context.Background(), h.c, h.cfg, workflows.JoinerInput{HRISID: id, Source: "test"})
	require.NoError(h.t, err)
	require.Equal(h.t, run.Started, res.Outcome)
}

// approveWhenAsked waits for AwaitingApproval and approves as the manager.
func (h *harness) approveWhenAsked(id string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		st, _, _, err := run.Status(ctx, h.c, id)
		if err == nil && st.Stage == workflows.StageAwaitingApproval {
			require.NoError(h.t, run.Signal(ctx, h.c, id, workflows.SignalApprove,
				workflows.ApprovalSignal{Approver: st.Plan.Approval.Approver, Comment: "integration test"}))
			return
		}
		require.NoError(h.t, ctx.Err(), "joiner %s never asked for approval (last stage %s, err %v)", id, st.Stage, err)
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *harness) result(id string) (*workflows.JoinerResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return run.Result(ctx, h.c, id)
}

// residue lists what the joiner left on the servers.
func (h *harness) residue(id string, groups []string, dn string) []string {
	h.t.Helper()
	ctx := context.Background()
	var left []string
	e, err := h.dir.FindByEmployeeID(ctx, id, false)
	require.NoError(h.t, err)
	if e != nil {
		left = append(left, "ldap entry "+e.DN)
	}
	if dn != "" {
		for _, g := range groups {
			in, err := h.dir.IsMember(ctx, h.dir.GroupDN(g), dn)
			require.NoError(h.t, err)
			if in {
				left = append(left, "member of "+g)
			}
		}
	}
	_, found, err := h.sec.Metadata(ctx, h.sec.JoinerPath(id, "initial-credential"))
	require.NoError(h.t, err)
	if found {
		left = append(left, "vault secret")
	}
	w, err := h.hr.GetWorker(ctx, id)
	require.NoError(h.t, err)
	if w.WorkEmail != "" || w.Username != "" {
		left = append(left, fmt.Sprintf("hris fields workEmail=%q customUsername=%q", w.WorkEmail, w.Username))
	}
	return left
}

func TestJoinerEndToEndOnTheRealStack(t *testing.T) {
	h := newHarness(t)
	id := h.hire("Marie", "Curie-Skłodowska")
	h.start(id)
	h.approveWhenAsked(id)
	res, err := h.result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome)
	require.NotEmpty(t, res.PolicyVersion)
	st, _, _, err := run.Status(context.Background(), h.c, id)
	require.NoError(t, err)
	require.Contains(t, st.Plan.Candidates, res.Username)
	require.Equal(t, "marie.curiesklodowsk", st.Plan.Candidates[0], "transliterated, stripped, cut to 20")
	require.Regexp(t, `^[a-z0-9.]+$`, res.Username, "transliterated to ASCII")

	ctx := context.Background()
	e, err := h.dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, res.DN, e.DN)
	for _, g := range res.Groups {
		in, err := h.dir.IsMember(ctx, h.dir.GroupDN(g), res.DN)
		require.NoError(t, err)
		require.True(t, in, g)
	}
	md, found, err := h.sec.Metadata(ctx, res.Credential.Path)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, res.Credential.Version, md.CurrentVersion)
	w, err := h.hr.GetWorker(ctx, id)
	require.NoError(t, err)
	require.Equal(t, res.Username, w.Username)
	require.Equal(t, res.Username+"@joinery.test", w.WorkEmail)

	// The manager unwraps the token exactly once and gets the password; that
	// password, and the token, appear nowhere in the workflow's history.
	inbox := activities.FileInbox{Dir: h.cfg.InboxDir}
	tok, err := os.ReadFile(inbox.HandoverPath(res.Credential.DeliveredTo, id))
	require.NoError(t, err)
	token := strings.TrimSpace(string(tok))
	password := unwrapPassword(t, h.ep.VaultAddr, token)
	require.NotEmpty(t, password)
	history := historyJSON(t, h.c, workflows.JoinerWorkflowID(id))
	require.NotContains(t, history, password, "the initial password must never enter workflow history")
	require.NotContains(t, history, token, "the wrapping token must never enter workflow history")
	require.Contains(t, history, res.Credential.WrapAccessor, "the accessor (not secret) is recorded")
	_, err = unwrap(h.ep.VaultAddr, token)
	require.Error(t, err, "a wrapped token unwraps only once")
}

func TestTenSameNameJoinersGetTenDistinctUsernames(t *testing.T) {
	h := newHarness(t)
	last := fmt.Sprintf("Twin%d", rand.IntN(1e6))
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, h.hire("Alex", last))
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.start(id)
			h.approveWhenAsked(id)
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for _, id := range ids {
		res, err := h.result(id)
		require.NoError(t, err, id)
		require.Equal(t, workflows.OutcomeCompleted, res.Outcome)
		require.NotContains(t, seen, res.Username, "joiners %s and %s got the same username", seen[res.Username], id)
		seen[res.Username] = id
	}
	require.Len(t, seen, 10)
}

func TestSeededCollisionGetsTheFallback(t *testing.T) {
	h := newHarness(t)
	// john.smith and jsmith are seeded; earlier runs may hold john.smith2...
	id := h.hire("John", "Smith")
	h.start(id)
	h.approveWhenAsked(id)
	res, err := h.result(id)
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
	h := newHarness(t)
	for _, step := range []string{activities.StepClaim, activities.StepGrant, activities.StepCredential, activities.StepWriteBack} {
		t.Run(step, func(t *testing.T) {
			id := h.hire("Rosalind", "Franklin")
			h.mu.Lock()
			h.faults[id] = step
			h.mu.Unlock()
			h.start(id)
			h.approveWhenAsked(id)
			res, err := h.result(id)
			require.Error(t, err)
			require.NotNil(t, res, "a failed joiner reports its final state")
			require.Equal(t, workflows.OutcomeFailed, res.Outcome)
			groups := []string{"all-staff", "engineering", "github-eu", "vpn-users"}
			require.Empty(t, h.residue(id, groups, res.DN), "step %s", step)

			// Compensations a second time: nothing to undo, still success.
			ctx := context.Background()
			require.NoError(t, h.acts.DeleteAccount(ctx, activities.AccountRef{HRISID: id, DN: res.DN}))
			if res.DN != "" {
				for _, g := range groups {
					require.NoError(t, h.acts.RevokeGroup(ctx, activities.GroupInput{HRISID: id, Group: g, MemberDN: res.DN}))
				}
			}
			require.NoError(t, h.acts.RevokeCredential(ctx, activities.RevokeInput{HRISID: id}))
			require.NoError(t, h.acts.UndoWriteBack(ctx, activities.WriteBackInput{HRISID: id,
				Want: map[string]string{"workEmail": "", "customUsername": ""}, Expected: map[string]string{"workEmail": "x@y", "customUsername": "x"}}))
			require.Empty(t, h.residue(id, groups, res.DN))
		})
	}
}

func TestRescindAfterProvisioningStartedRollsBack(t *testing.T) {
	h := newHarness(t)
	id := h.hire("Emmy", "Noether")
	h.start(id)
	ctx := context.Background()
	require.NoError(t, run.Signal(ctx, h.c, id, workflows.SignalRescind, workflows.RescindSignal{By: "hr", Reason: "offer withdrawn"}))
	res, err := h.result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, res.Outcome)
	require.Empty(t, h.residue(id, []string{"all-staff", "engineering"}, res.DN))
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

package activities

// Retry hygiene of the credential activities on the real Vault (the
// worker's own AppRole identity and policy) and a private slapd: "the
// first attempt wrote everything, then the worker died before Temporal
// recorded the result" is the same activity run again under the same
// identity — same workflow ID, run ID and activity ID — which is what the
// workflow below does in Temporal's test environment.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/go-ldap/ldap/v3"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// workerSecrets logs in to the dev stack's Vault exactly as the worker does.
func workerSecrets(t *testing.T, ep stack.Endpoints) *secrets.Client {
	t.Helper()
	roleID, err := os.ReadFile(stack.VaultWorkerRoleIDFile(ep.StateDir))
	require.NoError(t, err)
	secretID, err := os.ReadFile(stack.VaultWorkerSecretIDFile(ep.StateDir))
	require.NoError(t, err)
	c, err := secrets.New(context.Background(), secrets.Config{Addr: ep.VaultAddr,
		RoleID: strings.TrimSpace(string(roleID)), SecretID: strings.TrimSpace(string(secretID))})
	require.NoError(t, err)
	return c
}

func vaultAPI(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address, cfg.MaxRetries = addr, 0
	vc, err := vault.NewClient(cfg)
	require.NoError(t, err)
	vc.SetToken(token)
	return vc
}

// delivery is one handed-over token and the activity identity it was
// handed over under.
type delivery struct {
	token                         string
	workflowID, runID, activityID string
}

// recordingHandover delivers into a FileInbox (as the dev worker does) and
// remembers each token with its activity identity.
type recordingHandover struct {
	inbox FileInbox
	mu    sync.Mutex
	got   []delivery
}

func (h *recordingHandover) Deliver(ctx context.Context, recipient, joinerID, token string) error {
	info := activity.GetInfo(ctx)
	h.mu.Lock()
	h.got = append(h.got, delivery{token, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityID})
	h.mu.Unlock()
	return h.inbox.Deliver(ctx, recipient, joinerID, token)
}

// step is one activity call of the test workflow; a non-empty id pins its
// activity ID.
type step struct {
	id string
	fn any
	in any
}

// runSteps runs the steps, in order, in one Joiner workflow of Temporal's
// test environment, and returns each step's raw result.
func runSteps(t *testing.T, a *Activities, wfID string, steps []step, outs []any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	withSuiteRuns(a, JoinerWorkflowType)
	env.RegisterActivity(a)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		for i, st := range steps {
			o := workflow.ActivityOptions{StartToCloseTimeout: time.Minute, ActivityID: st.id,
				RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}}
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), st.fn, st.in).Get(ctx, outs[i]); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
		}
		return nil
	}, workflow.RegisterOptions{Name: JoinerWorkflowType})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: wfID})
	env.ExecuteWorkflow(JoinerWorkflowType)
	require.True(t, env.IsWorkflowCompleted())
	return env.GetWorkflowError()
}

func requireTokenEnded(t *testing.T, ep stack.Endpoints, token, accessor string) {
	t.Helper()
	_, err := vaultAPI(t, ep.VaultAddr, "").Logical().Unwrap(token)
	require.Error(t, err, "wrapping token %s must not unwrap", accessor)
	_, err = vaultAPI(t, ep.VaultAddr, ep.VaultToken).Auth().Token().LookupAccessor(accessor)
	require.Error(t, err, "accessor %s must be gone", accessor)
}

func TestIntegrationRetriedIssueCredentialLeavesOneHandover(t *testing.T) {
	ep := stacktest.Ensure(t)
	dir, url := privateDirectory(t)
	id := fmt.Sprint(800000 + time.Now().UnixNano()%100000)
	wfID := JoinerWorkflowID(id)
	candidates := []string{"retry.person" + id}
	a := accountActivities(dir, id, "Retry", "Person", candidates)
	sec := workerSecrets(t, ep)
	a.Secrets = sec
	h := &recordingHandover{inbox: FileInbox{Dir: t.TempDir()}}
	a.Handover = h
	path := sec.JoinerPath(id, secrets.InitialCredentialName)
	root, err := secrets.New(context.Background(), secrets.Config{Addr: ep.VaultAddr, Token: ep.VaultToken})
	require.NoError(t, err)
	t.Cleanup(func() { _ = root.RevokeInitialCredential(context.Background(), path, "") })

	claim := ClaimInput{HRISID: id, Candidates: candidates,
		Worker:    policy.Worker{HRISID: id, FirstName: "Retry", LastName: "Person"},
		Approvals: approvedBy(t, a, wfID, "ada.lovelace")}
	var claimed ClaimResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"claim", a.ClaimAccount, claim}}, []any{&claimed}))
	t.Cleanup(func() { _ = dir.Delete(context.Background(), claimed.DN, wfID) })

	cred := CredentialInput{HRISID: id, Username: claimed.Username, DN: claimed.DN, Recipient: "ada.lovelace", WrapTTL: time.Hour}
	var r1, r2 CredentialResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"credential", a.IssueCredential, cred}, {"credential", a.IssueCredential, cred}},
		[]any{&r1, &r2}))

	// Both attempts ran under one activity identity.
	require.Len(t, h.got, 2)
	require.Equal(t, h.got[0].workflowID, h.got[1].workflowID)
	require.Equal(t, h.got[0].runID, h.got[1].runID)
	require.Equal(t, "credential", h.got[0].activityID)
	require.Equal(t, h.got[0].activityID, h.got[1].activityID)

	// Only the last wrapping token is valid, and it is what the inbox holds.
	requireTokenEnded(t, ep, h.got[0].token, r1.WrapAccessor)
	onFile, err := os.ReadFile(h.inbox.HandoverPath("ada.lovelace", id))
	require.NoError(t, err)
	require.Equal(t, h.got[1].token, strings.TrimSpace(string(onFile)))
	require.Equal(t, []string{r1.WrapAccessor, r2.WrapAccessor}, r2.Accessors, "every accessor handed out is recorded")

	// The earlier version is destroyed; the latest is the account's password.
	md, found, err := root.Metadata(context.Background(), path)
	require.NoError(t, err)
	require.True(t, found)
	v1, _ := md.Version(r1.Version)
	require.True(t, v1.Destroyed)
	unwrapped, err := vaultAPI(t, ep.VaultAddr, "").Logical().Unwrap(h.got[1].token)
	require.NoError(t, err)
	pw := unwrapped.Data["data"].(map[string]any)["password"].(string)
	conn, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(claimed.DN, pw), "the one valid handover is the password the account has")

	// The rollback (the joiner's compensation) removes path and ledger.
	require.NoError(t, runSteps(t, a, wfID, []step{{"", a.RevokeCredential, RevokeInput{HRISID: id, Path: r2.Path, Accessor: r2.WrapAccessor}}}, []any{nil}))
	for _, p := range []string{path, secrets.CredentialLedgerPath(path)} {
		_, found, err := root.Metadata(context.Background(), p)
		require.NoError(t, err)
		require.False(t, found, p)
	}
}

// planWorkload plans a pipeline whose grants the dev stack's workload
// catalogue yields, owned by its sponsor.
func planWorkload(name string) planFunc {
	return func(w policy.Worker) (policy.Plan, error) {
		return policy.Plan{Kind: w.Kind, Owner: w.SponsorUsername, Approval: policy.ApprovalPlan{Approver: w.SponsorUsername},
			Workload: &policy.WorkloadPlan{Grants: []policy.VaultGrant{
				{Path: "secret/data/workloads/" + name + "/staging/*", Capabilities: []string{"read"}},
				{Path: "secret/metadata/workloads/" + name + "/staging/*", Capabilities: []string{"list"}},
			}, TokenTTL: 30 * time.Minute, TokenMaxTTL: time.Hour, SecretIDNumUses: 1, SecretIDTTL: time.Hour, WrapTTL: time.Hour}}, nil
	}
}

func TestIntegrationRetriedIssueWorkloadKeepsOnlyTheHandedOverSecretID(t *testing.T) {
	ep := stacktest.Ensure(t)
	name := fmt.Sprintf("rwl%d", time.Now().UnixNano()%1e9)
	req := NonHumanRequest{Name: name, SponsorID: "100", Environment: "staging", Purpose: "retry test", StartDate: "2027-01-01", EndDate: "2027-03-01"}
	key := nonHumanKey(req.Name, req.Environment)
	wfID := JoinerWorkflowID(key)
	sec := workerSecrets(t, ep)
	h := &recordingHandover{inbox: FileInbox{Dir: t.TempDir()}}
	hr := &fakeHRIS{fx: &sideEffects{}, workers: map[string]hris.Worker{
		"100": {ID: "100", FirstName: "Ada", LastName: "Lovelace", Username: "ada.lovelace", Status: "Active"}}}
	pl := planWorkload(name)
	a := &Activities{Secrets: sec, Workloads: sec, HRIS: hr, Policy: pl, Handover: h}
	role, _ := WorkloadNames(key)
	rootAPI := vaultAPI(t, ep.VaultAddr, ep.VaultToken)
	t.Cleanup(func() { _, _ = rootAPI.Logical().Delete("auth/approle/role/" + role) })

	p, _ := pl(policy.Worker{Kind: "pipeline", SponsorUsername: "ada.lovelace"})
	in := WorkloadInput{Key: key, Kind: "pipeline", Username: key, Recipient: "ada.lovelace", Workload: *p.Workload, Request: &req}
	var r1, r2 WorkloadResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"credential", a.IssueWorkloadCredential, in}, {"credential", a.IssueWorkloadCredential, in}},
		[]any{&r1, &r2}))
	require.Len(t, h.got, 2)
	require.Equal(t, h.got[0].activityID, h.got[1].activityID)
	require.Equal(t, h.got[0].runID, h.got[1].runID)

	// Only the handed-over SecretID exists on the role.
	list, err := rootAPI.Logical().List("auth/approle/role/" + role + "/secret-id")
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Equal(t, []any{r2.SecretIDAccessor}, list.Data["keys"])
	require.NotEqual(t, r1.SecretIDAccessor, r2.SecretIDAccessor)
	requireTokenEnded(t, ep, h.got[0].token, r1.WrapAccessor)
	require.Equal(t, []string{r1.WrapAccessor, r2.WrapAccessor}, r2.Accessors)

	// Revocation leaves nothing: no role, no ledger, the last token ended.
	require.NoError(t, runSteps(t, a, wfID, []step{{"", a.RevokeWorkload, RevokeWorkloadInput{Key: key, Accessor: r2.WrapAccessor}}}, []any{nil}))
	r, err := rootAPI.Logical().Read("auth/approle/role/" + role)
	require.NoError(t, err)
	require.Nil(t, r)
	requireTokenEnded(t, ep, h.got[1].token, r2.WrapAccessor)
	recs, err := sec.Handovers(context.Background(), sec.WorkloadLedgerPath(role))
	require.NoError(t, err)
	require.Empty(t, recs)
}

// The claim, retried under its own activity identity after an entry in the
// other container took its username (the first attempt died before its
// cross-container check): the retry withdraws its entry and claims the
// next candidate; the other entry is untouched.
func TestIntegrationRetriedClaimRunsTheCrossContainerCheck(t *testing.T) {
	dir, url := privateDirectory(t)
	id := fmt.Sprint(900000 + time.Now().UnixNano()%100000)
	wfID := JoinerWorkflowID(id)
	candidates := []string{"retry.claim" + id, "retry.claim" + id + "b"}
	a := accountActivities(dir, id, "Retry", "Claim", candidates)
	in := ClaimInput{HRISID: id, Candidates: candidates,
		Worker:    policy.Worker{HRISID: id, FirstName: "Retry", LastName: "Claim"},
		Approvals: approvedBy(t, a, wfID, "ada.lovelace")}

	var first ClaimResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"claim", a.ClaimAccount, in}}, []any{&first}))
	require.Equal(t, candidates[0], first.Username)

	conn, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(stack.LDAPBindDN, stack.LDAPBindPassword))
	rival := "uid=" + candidates[0] + ",ou=service-accounts," + stack.LDAPBaseDN
	add := ldap.NewAddRequest(rival, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{"rival"})
	add.Attribute("sn", []string{"rival"})
	add.Attribute("uid", []string{candidates[0]})
	require.NoError(t, conn.Add(add))
	before := rawEntry(t, url, rival)

	var again ClaimResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"claim", a.ClaimAccount, in}}, []any{&again}))
	require.Equal(t, candidates[1], again.Username)
	require.False(t, again.Existing)
	require.Nil(t, rawEntry(t, url, first.DN), "the retry withdrew its first entry")
	require.Equal(t, before, rawEntry(t, url, rival), "the other entry is untouched")
	e, err := dir.FindByOwner(context.Background(), wfID)
	require.NoError(t, err)
	require.Equal(t, again.DN, e.DN)
}

// The issue delivered its token and the worker died before Temporal
// recorded the result, and the joiner then rolls back (rescind, or the
// attempts ran out): the compensation runs without a path or accessor, and
// still ends the delivered token the manager has not redeemed.
func TestIntegrationRollbackAfterALostIssueResultEndsTheToken(t *testing.T) {
	ep := stacktest.Ensure(t)
	dir, _ := privateDirectory(t)
	id := fmt.Sprint(600000 + time.Now().UnixNano()%100000)
	wfID := JoinerWorkflowID(id)
	candidates := []string{"lost.result" + id}
	a := accountActivities(dir, id, "Lost", "Result", candidates)
	sec := workerSecrets(t, ep)
	a.Secrets = sec
	h := &recordingHandover{inbox: FileInbox{Dir: t.TempDir()}}
	a.Handover = h
	path := sec.JoinerPath(id, secrets.InitialCredentialName)

	var claimed ClaimResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"claim", a.ClaimAccount, ClaimInput{HRISID: id, Candidates: candidates,
		Worker: policy.Worker{HRISID: id, FirstName: "Lost", LastName: "Result"}, Approvals: approvedBy(t, a, wfID, "ada.lovelace")}}},
		[]any{&claimed}))
	t.Cleanup(func() { _ = dir.Delete(context.Background(), claimed.DN, wfID) })
	var lost CredentialResult // what Temporal never recorded
	require.NoError(t, runSteps(t, a, wfID, []step{{"credential", a.IssueCredential,
		CredentialInput{HRISID: id, Username: claimed.Username, DN: claimed.DN, Recipient: "ada.lovelace", WrapTTL: time.Hour}}},
		[]any{&lost}))
	require.Len(t, h.got, 1)

	// The workflow knows neither path nor accessor.
	require.NoError(t, runSteps(t, a, wfID, []step{{"", a.RevokeCredential, RevokeInput{HRISID: id}}}, []any{nil}))
	requireTokenEnded(t, ep, h.got[0].token, lost.WrapAccessor)
	_, found, err := sec.Metadata(context.Background(), path)
	require.NoError(t, err)
	require.False(t, found)
}

// A re-run of a lost workflow task (workflows/localsteps.go) after a policy
// change: the re-plan no longer plans the username this run already
// claimed, so it refuses the order — yet the run holds that entry, and
// refusing would roll it back without it (and without what was made for
// it). The claim answers with this run's own entry and creates nothing;
// once the run holds no entry, the same refused order is refused and
// creates nothing.
func TestIntegrationClaimRefusedByAChangedPlanKeepsThisRunsEntry(t *testing.T) {
	dir, _ := privateDirectory(t)
	id := fmt.Sprint(900000 + time.Now().UnixNano()%100000)
	wfID := JoinerWorkflowID(id)
	planned := []string{"replan.claim" + id}
	a := accountActivities(dir, id, "Replan", "Claim", planned)
	in := ClaimInput{HRISID: id, Candidates: planned,
		Worker:    policy.Worker{HRISID: id, FirstName: "Replan", LastName: "Claim"},
		Approvals: approvedBy(t, a, wfID, "ada.lovelace")}
	var first ClaimResult
	require.NoError(t, runSteps(t, a, wfID, []step{{"claim", a.ClaimAccount, in}}, []any{&first}))

	// The policy changed: it now plans other names.
	changed := accountActivities(dir, id, "Replan", "Claim", []string{"other.name" + id})
	changed.DecisionKeys = a.DecisionKeys
	var again ClaimResult
	require.NoError(t, runSteps(t, changed, wfID, []step{{"claim", changed.ClaimAccount, in}}, []any{&again}))
	require.Equal(t, first.DN, again.DN, "this run's own entry")
	require.True(t, again.Existing)

	// Without an entry of this run's, the refusal stands.
	require.NoError(t, dir.Delete(context.Background(), first.DN, wfID))
	err := runSteps(t, changed, wfID, []step{{"claim", changed.ClaimAccount, in}}, []any{&ClaimResult{}})
	require.ErrorContains(t, err, "(type: "+ErrTypeOrderRefused+", retryable: false)")
	e, ferr := dir.FindByOwner(context.Background(), wfID)
	require.NoError(t, ferr)
	require.Nil(t, e, "nothing was created")
}

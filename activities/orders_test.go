package activities

// The order checks, with fake connectors that record every side effect,
// run the way production runs them: inside a workflow of a given type and
// ID (Temporal's workflow test environment executes the real activities),
// because the activity test environment cannot set the caller.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/policy"
)

// runAs executes activity fn with in, scheduled by a workflow of type wfType
// and ID wfID, and decodes its result into out (may be nil).
func runAs(t *testing.T, a *Activities, wfType, wfID string, fn, in, out any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	withSuiteRuns(a, wfType)
	env.RegisterActivity(a)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		return workflow.ExecuteActivity(ctx, fn, in).Get(ctx, out)
	}, workflow.RegisterOptions{Name: wfType})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: wfID})
	env.ExecuteWorkflow(wfType)
	require.True(t, env.IsWorkflowCompleted())
	return env.GetWorkflowError()
}

// sideEffects records what the fakes were asked to change.
type sideEffects struct {
	mu      sync.Mutex
	changes []string
	reads   int
}

func (s *sideEffects) add(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = append(s.changes, c)
}

func (s *sideEffects) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.changes...)
}

type fakeDir struct {
	fx    *sideEffects
	owned map[string]*directory.Entry // owner -> entry
}

func (d *fakeDir) ClaimFirstWith(ctx context.Context, c []string, person func(string) directory.Person) (directory.Account, error) {
	p := person(c[0])
	d.fx.add("claim " + c[0] + " as " + p.GivenName + " " + p.Surname)
	return directory.Account{Username: c[0], DN: "uid=" + c[0] + ",ou=people,dc=joinery,dc=test"}, nil
}
func (d *fakeDir) FindByEmployeeID(context.Context, string, bool) (*directory.Entry, error) {
	return nil, nil
}
func (d *fakeDir) FindByOwner(_ context.Context, owner string) (*directory.Entry, error) {
	return d.owned[owner], nil
}
func (d *fakeDir) SetPassword(_ context.Context, dn, owner, _ string) error {
	d.fx.add("password " + dn)
	return nil
}
func (d *fakeDir) AddMember(_ context.Context, g, m, owner string) error {
	d.fx.add("add " + m + " to " + g)
	return nil
}
func (d *fakeDir) RemoveMember(_ context.Context, g, m, owner string) error {
	d.fx.add("remove " + m + " from " + g)
	return nil
}
func (d *fakeDir) Delete(_ context.Context, dn, owner string) error {
	d.fx.add("delete " + dn)
	return nil
}
func (d *fakeDir) Disable(_ context.Context, dn, owner string) error {
	d.fx.add("disable " + dn)
	return nil
}
func (d *fakeDir) GroupDN(cn string) string { return "cn=" + cn + ",ou=groups,dc=joinery,dc=test" }

type fakeHRIS struct {
	fx      *sideEffects
	workers map[string]hris.Worker
}

func (h *fakeHRIS) GetWorker(_ context.Context, id string) (hris.Worker, error) {
	h.fx.mu.Lock()
	h.fx.reads++
	h.fx.mu.Unlock()
	w, ok := h.workers[id]
	if !ok {
		return hris.Worker{}, connectors.Permanent(hris.System, "get", hris.TypeNotFound, "no such employee", errors.New("404"))
	}
	return w, nil
}
func (h *fakeHRIS) GetFields(context.Context, string, []string) (map[string]string, error) {
	return map[string]string{}, nil
}
func (h *fakeHRIS) WriteBack(_ context.Context, id string, want, _ map[string]string) (hris.WriteBackResult, error) {
	h.fx.add("writeback " + id + " " + strings.Join(sortedFields(want), ","))
	return hris.WriteBackResult{}, nil
}

// fakePolicy plans like a tiny policy: groups by department, the manager
// approves, a workload reads its environment's secrets.
type fakePolicy struct {
	mu      sync.Mutex
	version string
	groups  map[string][]string // department -> groups
}

func (p *fakePolicy) set(version string, groups map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.version, p.groups = version, groups
}

func (p *fakePolicy) Plan(w policy.Worker) (policy.Plan, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.Kind == "" {
		return policy.Plan{}, errors.New("kind: required")
	}
	if w.EndDate != "" && w.HireDate != "" && w.EndDate < w.HireDate {
		return policy.Plan{}, errors.New("endDate: before hireDate")
	}
	u := strings.ToLower(w.FirstName + "." + w.LastName)
	pl := policy.Plan{PolicyVersion: p.version, Kind: w.Kind, Candidates: []string{u, u + "2"},
		Attributes:         map[string]string{"mail": "{username}@joinery.test"},
		WriteBack:          []string{"customUsername", "workEmail"},
		WriteBackTemplates: map[string]string{"customUsername": "{username}", "workEmail": "{username}@joinery.test"},
		CredentialTTL:      24 * time.Hour}
	for _, g := range p.groups[w.Department] {
		pl.Groups = append(pl.Groups, policy.Grant{Group: g, Rule: "dept"})
	}
	if policy.IsHumanKind(w.Kind) {
		pl.Approval.Approver, pl.Owner = w.ManagerUsername, w.ManagerUsername
	} else {
		pl.Owner, pl.Approval.Approver = w.SponsorUsername, w.SponsorUsername
		pl.Workload = &policy.WorkloadPlan{Grants: []policy.VaultGrant{{Path: "secret/data/" + w.Environment + "/app/*", Capabilities: []string{"read"}}},
			TokenTTL: time.Hour, SecretIDNumUses: 1, WrapTTL: time.Hour}
		pl.WriteBack, pl.WriteBackTemplates = nil, nil
	}
	return pl, nil
}

type fakeSecrets struct{ fx *sideEffects }

func (s *fakeSecrets) IssueInitialCredential(ctx context.Context, key string, _ map[string]string, _ time.Duration,
	set func(context.Context, string) error, deliver func(context.Context, string) error) (secrets.Handover, error) {
	if err := set(ctx, "s3cret-value"); err != nil {
		return secrets.Handover{}, err
	}
	return secrets.Handover{Path: s.JoinerPath(key, "initial")}, deliver(ctx, "hvs.wrapping-token")
}
func (s *fakeSecrets) RevokeInitialCredential(_ context.Context, path, _ string) error {
	s.fx.add("destroy " + path)
	return nil
}
func (s *fakeSecrets) JoinerPath(key, name string) string {
	return "joinery/joiners/" + key + "/" + name
}

type fakeWorkloads struct{ fx *sideEffects }

func (w *fakeWorkloads) IssueWorkload(ctx context.Context, r secrets.WorkloadRequest, deliver func(context.Context, string) error) (secrets.IssuedWorkload, error) {
	w.fx.add("approle " + r.Role)
	return secrets.IssuedWorkload{}, deliver(ctx, "hvs.secret-id-wrap")
}
func (w *fakeWorkloads) RevokeWorkload(_ context.Context, role string) error {
	w.fx.add("revoke " + role)
	return nil
}
func (w *fakeWorkloads) DeletePolicy(context.Context, string) error { return nil }

type fakeHandover struct{ fx *sideEffects }

func (h *fakeHandover) Deliver(_ context.Context, to, _, _ string) error {
	h.fx.add("deliver to " + to)
	return nil
}

// orderFixture is an Activities over the fakes: HR record 300 (Grace Byron,
// Engineering, manager ada.lovelace) and a sponsor 100 for workloads.
func orderFixture(t *testing.T) (*Activities, *sideEffects, *fakePolicy, *bytes.Buffer) {
	t.Helper()
	fx := &sideEffects{}
	pol := &fakePolicy{}
	pol.set("v1", map[string][]string{"Engineering": {"all-staff", "engineering"}})
	hr := &fakeHRIS{fx: fx, workers: map[string]hris.Worker{
		"300": {ID: "300", FirstName: "Grace", LastName: "Byron", Department: "Engineering", SupervisorID: "100", Status: "Active"},
		"100": {ID: "100", FirstName: "Ada", LastName: "Lovelace", Department: "Engineering", Username: "ada.lovelace", Status: "Active"},
	}}
	var logs bytes.Buffer
	a := &Activities{
		Directory: &fakeDir{fx: fx, owned: map[string]*directory.Entry{
			"joiner-300": {DN: "uid=grace.byron,ou=people,dc=joinery,dc=test", Username: "grace.byron", Owner: "joiner-300"},
		}},
		Secrets: &fakeSecrets{fx: fx}, Workloads: &fakeWorkloads{fx: fx}, HRIS: hr, Policy: pol,
		Handover: &fakeHandover{fx: fx},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	}
	return a, fx, pol, &logs
}

func requireRefused(t *testing.T, err error) {
	t.Helper()
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae, "%v", err)
	require.Equal(t, ErrTypeOrderRefused, ae.Type(), "%v", err)
	require.True(t, ae.NonRetryable())
}

var botRequest = NonHumanRequest{Name: "deploy-bot", SponsorID: "100", Environment: "staging", Purpose: "deploys", StartDate: "2027-01-01", EndDate: "2027-03-01"}

func botWorkload() policy.WorkloadPlan {
	return policy.WorkloadPlan{Grants: []policy.VaultGrant{{Path: "secret/data/staging/app/*", Capabilities: []string{"read"}}},
		TokenTTL: time.Hour, SecretIDNumUses: 1, WrapTTL: time.Hour}
}

// Every side-effecting activity, asked by a workflow that is not a Joiner
// or is another joiner, refuses before touching anything, and says so in
// the log as a security event without the secrets it would have handled.
func TestOrdersFromTheWrongCallerAreRefused(t *testing.T) {
	a, fx, _, logs := orderFixture(t)
	dn := "uid=grace.byron,ou=people,dc=joinery,dc=test"
	orders := []struct {
		name string
		fn   any
		in   any
	}{
		{"claim", a.ClaimAccount, ClaimInput{HRISID: "300", Candidates: []string{"grace.byron"}, Attributes: map[string]string{"mail": "{username}@joinery.test"}}},
		{"grant", a.GrantGroup, GroupInput{HRISID: "300", Group: "all-staff", MemberDN: dn}},
		{"revoke group", a.RevokeGroup, GroupInput{HRISID: "300", Group: "all-staff", MemberDN: dn}},
		{"credential", a.IssueCredential, CredentialInput{HRISID: "300", Username: "grace.byron", DN: dn, Recipient: "ada.lovelace", WrapTTL: time.Hour}},
		{"revoke credential", a.RevokeCredential, RevokeInput{HRISID: "300"}},
		{"delete", a.DeleteAccount, AccountRef{HRISID: "300", DN: dn}},
		{"disable", a.DisableAccount, AccountRef{HRISID: "300", DN: dn}},
		{"workload", a.IssueWorkloadCredential, WorkloadInput{Key: "nhi-deploy-bot-staging", Recipient: "ada.lovelace", Workload: botWorkload(), Request: &botRequest}},
		{"revoke workload", a.RevokeWorkload, RevokeWorkloadInput{Key: "nhi-deploy-bot-staging"}},
		{"writeback", a.WriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"customUsername": "grace.byron"}}},
		{"notify", a.Notify, Notification{To: "ada.lovelace", HRISID: "300", Kind: "outcome", Message: "click here"}},
		{"undo writeback", a.UndoWriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"customUsername": ""}, Expected: map[string]string{"customUsername": "grace.byron"}}},
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			requireRefused(t, runAs(t, a, "Evil", "joiner-300", o.fn, o.in, nil))
			requireRefused(t, runAs(t, a, JoinerWorkflowType, "joiner-301", o.fn, o.in, nil))
		})
	}
	require.Empty(t, fx.list(), "nothing was changed")
	log := logs.String()
	require.Contains(t, log, "event=security")
	require.Contains(t, log, `workflowType=Evil`)
	require.NotContains(t, log, "s3cret")
	require.NotContains(t, log, "hvs.")
}

// A Joiner with the right ID is still held to its plan: the grant, the
// claim, the recipient, the workload and the write-back must be the
// re-plan's. What the plan says goes through.
func TestOrdersAreCheckedAgainstTheRePlan(t *testing.T) {
	a, fx, _, _ := orderFixture(t)
	dn := "uid=grace.byron,ou=people,dc=joinery,dc=test"
	id := JoinerWorkflowID("300")
	bot := JoinerWorkflowID("nhi-deploy-bot-staging")
	refused := []struct {
		name string
		wfID string
		fn   any
		in   any
	}{
		{"finance is not planned", id, a.GrantGroup, GroupInput{HRISID: "300", Group: "finance", MemberDN: dn}},
		{"forged candidates", id, a.ClaimAccount, ClaimInput{HRISID: "300", Candidates: []string{"root"}}},
		{"forged attribute", id, a.ClaimAccount, ClaimInput{HRISID: "300", Candidates: []string{"grace.byron"}, Attributes: map[string]string{"mail": "x@evil.test"}}},
		{"human placed among service accounts", id, a.ClaimAccount, ClaimInput{HRISID: "300", Candidates: []string{"grace.byron"}, NonHuman: true}},
		{"password delivered to the attacker", id, a.IssueCredential, CredentialInput{HRISID: "300", Username: "grace.byron", DN: dn, Recipient: "mallory"}},
		{"someone else's secret", id, a.RevokeCredential, RevokeInput{HRISID: "300", Path: "joinery/joiners/200/initial"}},
		{"write-back of a forged value", id, a.WriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"workEmail": "mallory@evil.test"}}},
		{"write-back of a field Joinery does not own", id, a.WriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"department": "Finance"}}},
		{"undo to a forged value", id, a.UndoWriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"workEmail": "mallory@evil.test"}, Expected: map[string]string{"workEmail": "grace.byron@joinery.test"}}},
		{"workload with root grants", bot, a.IssueWorkloadCredential, WorkloadInput{Key: "nhi-deploy-bot-staging", Recipient: "ada.lovelace", Request: &botRequest,
			Workload: policy.WorkloadPlan{Grants: []policy.VaultGrant{{Path: "sys/*", Capabilities: []string{"sudo"}}}}}},
		{"workload to the attacker", bot, a.IssueWorkloadCredential, WorkloadInput{Key: "nhi-deploy-bot-staging", Recipient: "mallory", Request: &botRequest, Workload: botWorkload()}},
		{"workload without a request", bot, a.IssueWorkloadCredential, WorkloadInput{Key: "nhi-deploy-bot-staging", Recipient: "ada.lovelace", Workload: botWorkload()}},
		{"request of another key", JoinerWorkflowID("nhi-other-staging"), a.IssueWorkloadCredential, WorkloadInput{Key: "nhi-other-staging", Recipient: "ada.lovelace", Request: &botRequest, Workload: botWorkload()}},
		{"no HR record", JoinerWorkflowID("999"), a.GrantGroup, GroupInput{HRISID: "999", Group: "all-staff", MemberDN: dn}},
	}
	for _, o := range refused {
		t.Run(o.name, func(t *testing.T) { requireRefused(t, runAs(t, a, JoinerWorkflowType, o.wfID, o.fn, o.in, nil)) })
	}
	require.Empty(t, fx.list(), "nothing was changed")

	allowed := []struct {
		name string
		wfID string
		fn   any
		in   any
	}{
		{"claim", id, a.ClaimAccount, ClaimInput{HRISID: "300", Candidates: []string{"grace.byron", "grace.byron2"},
			Attributes: map[string]string{"mail": "{username}@joinery.test"}, Worker: policy.Worker{FirstName: "Mallory"},
			Approvals: approvedBy(t, a, id, "ada.lovelace")}},
		{"grant", id, a.GrantGroup, GroupInput{HRISID: "300", Group: "engineering", MemberDN: dn}},
		{"credential", id, a.IssueCredential, CredentialInput{HRISID: "300", Username: "grace.byron", DN: dn, Recipient: "ada.lovelace", WrapTTL: time.Hour}},
		{"writeback", id, a.WriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"workEmail": "grace.byron@joinery.test", "customUsername": "grace.byron"}}},
		{"undo", id, a.UndoWriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"workEmail": ""}, Expected: map[string]string{"workEmail": "grace.byron@joinery.test"}}},
		{"end of access", id, a.WriteBack, WriteBackInput{HRISID: "300", Want: map[string]string{"customAccessStatus": "expired"}}},
		{"revoke own credential", id, a.RevokeCredential, RevokeInput{HRISID: "300"}},
		{"revoke group", id, a.RevokeGroup, GroupInput{HRISID: "300", Group: "finance", MemberDN: dn}},
		{"workload", bot, a.IssueWorkloadCredential, WorkloadInput{Key: "nhi-deploy-bot-staging", Kind: "service-account", Recipient: "ada.lovelace", Request: &botRequest, Workload: botWorkload()}},
	}
	for _, o := range allowed {
		t.Run(o.name, func(t *testing.T) { require.NoError(t, runAs(t, a, JoinerWorkflowType, o.wfID, o.fn, o.in, nil)) })
	}
	require.Equal(t, []string{
		"claim grace.byron as Grace Byron", // the names come from HR, not the order
		"add " + dn + " to cn=engineering,ou=groups,dc=joinery,dc=test",
		"password " + dn, "deliver to ada.lovelace",
		"writeback 300 customUsername,workEmail",
		"writeback 300 workEmail",
		"writeback 300 customAccessStatus",
		"destroy joinery/joiners/300/" + secrets.InitialCredentialName,
		"remove " + dn + " from cn=finance,ou=groups,dc=joinery,dc=test",
		"approle joinery-nhi-deploy-bot-staging", "deliver to ada.lovelace",
	}, fx.list())
}

// A joiner keeps the plan it started under: after PlanJoiner the policy
// drops a group, and the running joiner's grant of it still goes through;
// a group no version ever planned does not. The HR record is read once per
// run while the re-plan is cached, not once per order.
func TestRunningJoinerKeepsItsRecordedPlan(t *testing.T) {
	a, fx, pol, _ := orderFixture(t)
	dn := "uid=grace.byron,ou=people,dc=joinery,dc=test"
	id := JoinerWorkflowID("300")
	w, err := a.FetchJoiner(context.Background(), FetchInput{HRISID: "300"})
	require.NoError(t, err)
	require.NoError(t, runAs(t, a, JoinerWorkflowType, id, a.PlanJoiner, w, &policy.Plan{}))
	pol.set("v2", map[string][]string{"Engineering": {"all-staff"}})
	// The cached re-plan is v1's too; expire it so v2 is what the worker holds.
	a.book().replans = ttlMap[planned]{ttl: replanTTL, max: replanMax}
	require.NoError(t, runAs(t, a, JoinerWorkflowType, id, a.GrantGroup, GroupInput{HRISID: "300", Group: "engineering", MemberDN: dn}, nil))
	requireRefused(t, runAs(t, a, JoinerWorkflowType, id, a.GrantGroup, GroupInput{HRISID: "300", Group: "finance", MemberDN: dn}, nil))

	fx.reads = 0
	for range 5 {
		require.NoError(t, runAs(t, a, JoinerWorkflowType, id, a.GrantGroup, GroupInput{HRISID: "300", Group: "all-staff", MemberDN: dn}, nil))
	}
	require.LessOrEqual(t, fx.reads, 2, "the re-plan is cached per run (HR record and manager read once)")
}

// A non-human joiner's orders that do not carry the request are re-planned
// from the request its ResolveNonHuman recorded for the run.
func TestNonHumanOrderUsesTheRecordedRequest(t *testing.T) {
	a, _, _, _ := orderFixture(t)
	bot := JoinerWorkflowID("nhi-deploy-bot-staging")
	in := ResolveInput{Key: "nhi-deploy-bot-staging", Kind: "service-account", Request: botRequest}
	require.NoError(t, runAs(t, a, JoinerWorkflowType, bot, a.ResolveNonHuman, in, &policy.Worker{}))
	require.NoError(t, runAs(t, a, JoinerWorkflowType, bot, a.IssueWorkloadCredential,
		WorkloadInput{Key: in.Key, Kind: in.Kind, Recipient: "ada.lovelace", Workload: botWorkload()}, nil))
	requireRefused(t, runAs(t, a, JoinerWorkflowType, bot, a.IssueWorkloadCredential,
		WorkloadInput{Key: in.Key, Kind: in.Kind, Recipient: "ada.lovelace", Workload: policy.WorkloadPlan{Grants: []policy.VaultGrant{{Path: "secret/*", Capabilities: []string{"read"}}}}}, nil))
}

// HR terminates a hire before the start: the record no longer plans, so a
// grant is refused, but the rollback's write-back undo still goes through.
func TestTerminatedBeforeStartStillUndoes(t *testing.T) {
	a, fx, _, _ := orderFixture(t)
	hr := a.HRIS.(*fakeHRIS)
	w := hr.workers["300"]
	w.HireDate, w.TerminationDate = "2027-02-01", "2027-01-20"
	hr.workers["300"] = w
	dn := "uid=grace.byron,ou=people,dc=joinery,dc=test"
	id := JoinerWorkflowID("300")
	requireRefused(t, runAs(t, a, JoinerWorkflowType, id, a.GrantGroup, GroupInput{HRISID: "300", Group: "engineering", MemberDN: dn}, nil))
	require.NoError(t, runAs(t, a, JoinerWorkflowType, id, a.UndoWriteBack, WriteBackInput{HRISID: "300",
		Want: map[string]string{"workEmail": ""}, Expected: map[string]string{"workEmail": "grace.byron@joinery.test"}}, nil))
	require.Equal(t, []string{"writeback 300 workEmail"}, fx.list())
}

// Compensations succeed when there is nothing of this joiner's to undo.
func TestUndoWithoutAnEntryIsNothingToDo(t *testing.T) {
	a, fx, _, _ := orderFixture(t)
	require.NoError(t, runAs(t, a, JoinerWorkflowType, JoinerWorkflowID("200"), a.UndoWriteBack,
		WriteBackInput{HRISID: "200", Want: map[string]string{"workEmail": ""}, Expected: map[string]string{"workEmail": "x@joinery.test"}}, nil))
	require.NoError(t, runAs(t, a, JoinerWorkflowType, JoinerWorkflowID("200"), a.DeleteAccount, AccountRef{HRISID: "200"}, nil))
	require.Empty(t, fx.list())
}

func TestTTLMapIsBounded(t *testing.T) {
	m := ttlMap[int]{ttl: time.Minute, max: 3}
	now := time.Now()
	for i := range 10 {
		m.put(string(rune('a'+i)), i, now.Add(time.Duration(i)*time.Second))
	}
	require.Len(t, m.m, 3)
	_, ok := m.get("j", now.Add(10*time.Second))
	require.True(t, ok)
	_, ok = m.get("a", now)
	require.False(t, ok, "the oldest went first")
	_, ok = m.get("j", now.Add(2*time.Minute))
	require.False(t, ok, "expired")
}

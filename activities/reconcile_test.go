package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
)

// Fakes for the reconciler's judgement; the integration test
// (internal/e2e/reconcile_integration_test.go) runs it on the real servers.

type fakeRun struct {
	client.WorkflowRun
	res closedResult
}

func (f fakeRun) Get(_ context.Context, v any) error {
	b, _ := json.Marshal(f.res)
	return json.Unmarshal(b, v)
}

type fakeJoiners struct {
	status map[string]enumspb.WorkflowExecutionStatus // workflow ID -> status of its latest run, run-1; absent = NotFound
	result map[string]closedResult
	// older runs still on record: run ID -> status
	older map[string]enumspb.WorkflowExecutionStatus
	// rehire generations that exist (workflow IDs joiner-K~gN)
	generations []string
	// types overrides a workflow ID's type (default Joiner); first
	// overrides a run's first run of its chain (default run-1).
	types map[string]string
	first map[string]string
}

func (f *fakeJoiners) typeOf(id string) string {
	if t, ok := f.types[id]; ok {
		return t
	}
	return JoinerWorkflowType
}

func (f *fakeJoiners) DescribeWorkflowExecution(_ context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	st, ok := f.status[id]
	if run != "" && run != "run-1" {
		st, ok = f.older[run]
	}
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	if run == "" {
		run = "run-1"
	}
	first := "run-1"
	if fr, ok := f.first[run]; ok {
		first = fr
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status: st, Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run},
		Type: &commonpb.WorkflowType{Name: f.typeOf(id)}, FirstRunId: first}}, nil
}

func (f *fakeJoiners) GetWorkflow(_ context.Context, id, _ string) client.WorkflowRun {
	return fakeRun{res: f.result[id]}
}

func (f *fakeJoiners) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	var out workflowservice.ListWorkflowExecutionsResponse
	for _, g := range f.generations {
		if strings.Contains(req.Query, "STARTS_WITH") && strings.Contains(req.Query, strings.SplitAfter(g, "~g")[0]) {
			out.Executions = append(out.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: g},
				Type: &commonpb.WorkflowType{Name: f.typeOf(g)}})
		}
	}
	return &out, nil
}

type fakeRecDir struct {
	entries map[string][]directory.ManagedEntry // owner -> entries
	groups  map[string][]string                 // member DN -> group DNs
	calls   []string
}

func (f *fakeRecDir) ListManaged(_ context.Context, _ int, fn func([]directory.ManagedEntry) error) error {
	for _, es := range f.entries {
		if err := fn(es); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeRecDir) ManagedByOwner(_ context.Context, owner string) ([]directory.ManagedEntry, error) {
	return f.entries[owner], nil
}

func (f *fakeRecDir) GroupsOf(_ context.Context, dn string) ([]string, error) {
	return f.groups[dn], nil
}

func (f *fakeRecDir) RemoveMember(_ context.Context, g, m, owner string) error {
	f.calls = append(f.calls, fmt.Sprintf("remove %s from %s as %s", m, g, owner))
	return nil
}

func (f *fakeRecDir) Disable(_ context.Context, dn, owner string) error {
	f.calls = append(f.calls, fmt.Sprintf("disable %s as %s", dn, owner))
	return nil
}

type fakeRecSecrets struct {
	ledgers map[string][]secrets.HandoverRecord
	kv      map[string]secrets.SecretMetadata
	roles   map[string]bool
	calls   []string
}

func (f *fakeRecSecrets) JoinerPath(k, n string) string                { return "joinery/joiners/" + k + "/" + n }
func (f *fakeRecSecrets) IndexHandovers(context.Context, string) error { return nil }
func (f *fakeRecSecrets) Metadata(_ context.Context, p string) (secrets.SecretMetadata, bool, error) {
	md, ok := f.kv[p]
	return md, ok, nil
}
func (f *fakeRecSecrets) RevokeInitialCredential(_ context.Context, p, _ string) error {
	f.calls = append(f.calls, "destroy "+p)
	return nil
}
func (f *fakeRecSecrets) Handovers(_ context.Context, p string) ([]secrets.HandoverRecord, error) {
	return f.ledgers[p], nil
}
func (f *fakeRecSecrets) WorkloadLedgerPath(r string) string {
	return "joinery/joiners/" + r + "/secret-id-handovers"
}
func (f *fakeRecSecrets) AppRoleExists(_ context.Context, r string) (bool, error) {
	return f.roles[r], nil
}
func (f *fakeRecSecrets) RevokeWorkload(_ context.Context, r string) error {
	f.calls = append(f.calls, "revoke role "+r)
	return nil
}
func (f *fakeRecSecrets) DeletePolicy(_ context.Context, p string) error {
	f.calls = append(f.calls, "delete policy "+p)
	return nil
}

type fakeRecHR map[string]hris.Worker

func (f fakeRecHR) GetWorker(_ context.Context, id string) (hris.Worker, error) {
	w, ok := f[id]
	if !ok {
		return hris.Worker{}, connectors.Permanent("hris", "get", hris.TypeNotFound, "no such employee", nil)
	}
	return w, nil
}

var recNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type recFixture struct {
	r   *Reconcile
	dir *fakeRecDir
	sec *fakeRecSecrets
	tmp *fakeJoiners
	hr  fakeRecHR
}

// newRecFixture: one joiner key holding an entry (created an hour ago),
// one group membership, an initial credential and, for nhi- keys, an
// AppRole; status is its Temporal status (-1: no record).
func newRecFixture(key string, status enumspb.WorkflowExecutionStatus, outcome string) *recFixture {
	id := JoinerWorkflowID(key)
	dn := "uid=" + key + ",ou=people,dc=joinery,dc=test"
	f := &recFixture{
		dir: &fakeRecDir{entries: map[string][]directory.ManagedEntry{id: {{DN: dn, Owner: id, OwnerRun: "run-1", CreatedAt: recNow.Add(-time.Hour)}}},
			groups: map[string][]string{dn: {"cn=contractors,ou=groups,dc=joinery,dc=test"}}},
		sec: &fakeRecSecrets{kv: map[string]secrets.SecretMetadata{"joinery/joiners/" + key + "/initial-credential": {
			CreatedTime: recNow.Add(-time.Hour), Versions: []secrets.VersionMetadata{{Version: 1}}}},
			roles: map[string]bool{"joinery-" + key: true}},
		tmp: &fakeJoiners{status: map[string]enumspb.WorkflowExecutionStatus{}, result: map[string]closedResult{id: {Outcome: outcome}}},
		hr:  fakeRecHR{key: {ID: key, Status: "Active"}},
	}
	if status >= 0 {
		f.tmp.status[id] = status
	}
	f.r = &Reconcile{Directory: f.dir, Secrets: f.sec, Joiners: f.tmp, HRIS: f.hr, MinAge: time.Minute, Now: func() time.Time { return recNow }}
	return f
}

func (f *recFixture) revoke(t *testing.T, key string) Orphan {
	t.Helper()
	o, err := f.r.ReconcileRevokeOrphan(context.Background(), ReconcileRevokeInput{Key: key})
	require.NoError(t, err)
	return o
}

func TestReconcileLeavesLiveAndHandedOverJoinersAlone(t *testing.T) {
	for name, f := range map[string]*recFixture{
		"running joiner":        newRecFixture("300", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, ""),
		"running workload":      newRecFixture("nhi-bot-production", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, ""),
		"completed employee":    newRecFixture("301", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "completed"),
		"no record, HR current": newRecFixture("302", -1, ""),
	} {
		t.Run(name, func(t *testing.T) {
			list, err := f.r.ReconcileListOrphans(context.Background(), ReconcileListInput{})
			require.NoError(t, err)
			require.Empty(t, list.Orphans)
			require.Equal(t, 1, list.Judged)
			require.Equal(t, 1, list.Live+list.Kept)
			for k := range f.hr {
				o := f.revoke(t, k)
				require.Empty(t, o.Items)
			}
			require.Empty(t, f.dir.calls, "nothing changed in the directory")
			require.Empty(t, f.sec.calls, "nothing changed in Vault")
		})
	}
}

func TestReconcileRevokesWhatClosedJoinersHold(t *testing.T) {
	for name, tc := range map[string]struct {
		key     string
		status  enumspb.WorkflowExecutionStatus
		outcome string
		hrEnd   string
		reason  string
	}{
		"terminated contractor":     {"303", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "", "", "Terminated"},
		"cancelled workload":        {"nhi-bot-production", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, "", "", "Canceled"},
		"revoked but left residue":  {"304", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "revoked", "", "revoked"},
		"employee whose end passed": {"305", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "completed", "2026-11-29", "2026-11-29"},
		"workload with no record":   {"nhi-ghost-staging", -1, "", "", "non-human"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newRecFixture(tc.key, tc.status, tc.outcome)
			if tc.hrEnd != "" {
				f.hr[tc.key] = hris.Worker{ID: tc.key, Status: "Active", TerminationDate: tc.hrEnd}
			}
			list, err := f.r.ReconcileListOrphans(context.Background(), ReconcileListInput{})
			require.NoError(t, err)
			require.Len(t, list.Orphans, 1)
			o := list.Orphans[0]
			require.Contains(t, o.Reason, tc.reason)
			want := 3 // membership, entry, credential
			if strings.HasPrefix(tc.key, "nhi-") {
				want++
			}
			require.Len(t, o.Items, want)
			require.Empty(t, f.dir.calls, "listing changes nothing")
			require.Empty(t, f.sec.calls)

			done := f.revoke(t, tc.key)
			id := JoinerWorkflowID(tc.key)
			dn := "uid=" + tc.key + ",ou=people,dc=joinery,dc=test"
			for _, it := range done.Items {
				require.True(t, it.Done, "%+v", it)
			}
			require.Equal(t, []string{"remove " + dn + " from cn=contractors,ou=groups,dc=joinery,dc=test as " + id, "disable " + dn + " as " + id},
				f.dir.calls, "every change names the joiner's marker")
			wantSec := []string{"destroy joinery/joiners/" + tc.key + "/initial-credential"}
			if strings.HasPrefix(tc.key, "nhi-") {
				wantSec = append([]string{"revoke role joinery-" + tc.key, "delete policy joinery-" + tc.key}, wantSec...)
			}
			require.Equal(t, wantSec, f.sec.calls)
		})
	}
}

// Entries and credentials younger than the minimum age are reported, not
// revoked: a joiner that created them seconds ago may not be visible yet.
func TestReconcileSkipsYoungHoldings(t *testing.T) {
	f := newRecFixture("306", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "")
	f.dir.entries["joiner-306"][0].CreatedAt = recNow.Add(-10 * time.Second)
	md := f.sec.kv["joinery/joiners/306/initial-credential"]
	md.CreatedTime = recNow.Add(-10 * time.Second)
	f.sec.kv["joinery/joiners/306/initial-credential"] = md
	o := f.revoke(t, "306")
	require.Empty(t, o.Items)
	require.Len(t, o.Young, 3)
	require.Empty(t, f.dir.calls)
	require.Empty(t, f.sec.calls)
	// An entry whose age cannot be proven counts as young too.
	f.dir.entries["joiner-306"][0].CreatedAt = time.Time{}
	o = f.revoke(t, "306")
	require.Len(t, o.Young, 3)
	require.Empty(t, f.dir.calls)
	// The run's input can raise the minimum age, never lower it.
	require.Equal(t, time.Hour, f.r.minAge(time.Hour))
	require.Equal(t, time.Minute, f.r.minAge(time.Second))
}

// A key that is not one is refused before anything is read or changed.
func TestReconcileRefusesBadKeys(t *testing.T) {
	f := newRecFixture("307", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "")
	for _, k := range []string{"", "../307", "307/../308", "a b", "x\x00"} {
		_, err := f.r.ReconcileRevokeOrphan(context.Background(), ReconcileRevokeInput{Key: k})
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae, k)
		require.Equal(t, ErrTypeInvalidJoiner, ae.Type())
		_, err = f.r.ReconcileListOrphans(context.Background(), ReconcileListInput{Keys: []string{"307", k}})
		require.ErrorAs(t, err, &ae, k)
	}
	require.Empty(t, f.dir.calls)
	require.Empty(t, f.sec.calls)
}

// Markers that name no joiner workflow are counted and left alone.
func TestReconcileIgnoresForeignMarkers(t *testing.T) {
	f := newRecFixture("308", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "")
	f.dir.entries["someone-else"] = []directory.ManagedEntry{{DN: "uid=x,ou=people,dc=joinery,dc=test", Owner: "someone-else"}}
	list, err := f.r.ReconcileListOrphans(context.Background(), ReconcileListInput{})
	require.NoError(t, err)
	require.Equal(t, 1, list.Ignored)
	require.Equal(t, 1, list.Judged)
}

// An entry made by an earlier run is judged by that run, not by a later
// one that stopped AlreadyProvisioned; an earlier run past retention is
// judged like a joiner without a record (the HR record decides).
func TestReconcileJudgesTheRunThatCreatedTheEntry(t *testing.T) {
	f := newRecFixture("309", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "already-provisioned")
	f.dir.entries["joiner-309"][0].OwnerRun = "run-0"
	o := f.revoke(t, "309")
	require.Empty(t, o.Items, "run-0 is gone and HR is current: kept")
	require.Contains(t, o.Reason, "no joiner record")

	f.tmp.older = map[string]enumspb.WorkflowExecutionStatus{"run-0": enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED}
	o = f.revoke(t, "309")
	require.Equal(t, "Terminated", o.Status, "the creating run was terminated")
	require.Len(t, o.Items, 3)
	require.Len(t, f.dir.calls, 2)
}

// A credential already destroyed whose ledger still records a live
// wrapping token is still an orphan's: revoking it ends the handover.
func TestReconcileFindsLiveHandovers(t *testing.T) {
	f := newRecFixture("310", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "")
	path := "joinery/joiners/310/initial-credential"
	delete(f.sec.kv, path)
	f.sec.ledgers = map[string][]secrets.HandoverRecord{secrets.CredentialLedgerPath(path): {
		{WrapAccessor: "acc-live", State: secrets.HandoverLive, IssuedAt: recNow.Add(-time.Hour), ExpiresAt: recNow.Add(time.Hour)},
		{WrapAccessor: "acc-expired", State: secrets.HandoverLive, IssuedAt: recNow.Add(-48 * time.Hour), ExpiresAt: recNow.Add(-24 * time.Hour)},
		{WrapAccessor: "acc-ended", State: secrets.HandoverEnded, IssuedAt: recNow.Add(-time.Hour), ExpiresAt: recNow.Add(time.Hour)},
	}}
	o := f.revoke(t, "310")
	var secret *ReconcileItem
	for i := range o.Items {
		if o.Items[i].Kind == ItemSecret {
			secret = &o.Items[i]
		}
	}
	require.NotNil(t, secret)
	require.True(t, secret.Done)
	require.Contains(t, secret.Detail, "acc-live")
	require.NotContains(t, secret.Detail, "acc-expired")
	require.NotContains(t, secret.Detail, "acc-ended")
	require.Contains(t, f.sec.calls, "destroy "+path)
}

// One call judges at most MaxJoiners joiners in key order; Next resumes.
func TestReconcileListsInPages(t *testing.T) {
	f := newRecFixture("311", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "")
	for _, k := range []string{"312", "313"} {
		id := JoinerWorkflowID(k)
		f.dir.entries[id] = []directory.ManagedEntry{{DN: "uid=" + k + ",ou=people,dc=joinery,dc=test", Owner: id, OwnerRun: "run-1", CreatedAt: recNow.Add(-time.Hour)}}
		f.tmp.status[id] = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	}
	first, err := f.r.ReconcileListOrphans(context.Background(), ReconcileListInput{MaxJoiners: 2})
	require.NoError(t, err)
	require.Equal(t, 2, first.Judged)
	require.Equal(t, "312", first.Next)
	second, err := f.r.ReconcileListOrphans(context.Background(), ReconcileListInput{MaxJoiners: 2, After: first.Next})
	require.NoError(t, err)
	require.Equal(t, 1, second.Judged)
	require.Empty(t, second.Next)
}

// A key with rehire generations (joiner-K~gN) is judged by its newest
// generation, whose marker the entry carries after the take-over: a live
// rehire keeps everything, a terminated one is revoked under its own
// marker (the connectors assert it), and the leaver's closed first run
// never decides.
func TestReconcileJudgesTheNewestRehireGeneration(t *testing.T) {
	setup := func(st enumspb.WorkflowExecutionStatus) *recFixture {
		f := newRecFixture("314", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "")
		gen := "joiner-314~g3"
		f.tmp.generations = []string{"joiner-314~g2", gen}
		f.tmp.status["joiner-314~g2"] = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		f.tmp.status[gen] = st
		e := f.dir.entries["joiner-314"][0]
		e.Owner, e.OwnerRun = gen, "run-1"
		f.dir.entries = map[string][]directory.ManagedEntry{gen: {e}}
		return f
	}
	live := setup(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING)
	list, err := live.r.ReconcileListOrphans(context.Background(), ReconcileListInput{})
	require.NoError(t, err)
	require.Empty(t, list.Orphans)
	require.Empty(t, list.Unjudged)
	require.Equal(t, 1, list.Live)
	require.Zero(t, list.Ignored)
	o := live.revoke(t, "314")
	require.Empty(t, o.Items)
	require.Empty(t, live.dir.calls)
	require.Empty(t, live.sec.calls)

	gone := setup(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED)
	list, err = gone.r.ReconcileListOrphans(context.Background(), ReconcileListInput{})
	require.NoError(t, err)
	require.Len(t, list.Orphans, 1)
	require.Equal(t, "joiner-314~g3", list.Orphans[0].WorkflowID)
	o = gone.revoke(t, "314")
	for _, it := range o.Items {
		require.True(t, it.Done, it)
	}
	dn := "uid=314,ou=people,dc=joinery,dc=test"
	require.ElementsMatch(t, []string{
		"remove " + dn + " from cn=contractors,ou=groups,dc=joinery,dc=test as joiner-314~g3",
		"disable " + dn + " as joiner-314~g3",
	}, gone.dir.calls)
	require.Contains(t, gone.sec.calls, "destroy joinery/joiners/314/initial-credential")
}

func TestKeyOfAcceptsGenerationsOnly(t *testing.T) {
	for owner, want := range map[string]string{
		"joiner-314": "314", "joiner-314~g2": "314", "joiner-314~g1": "", "joiner-314~x": "",
		"joiner-314~g02": "", "nhi-x": "", "joiner-": "", "joiner-a/b": "",
	} {
		require.Equal(t, want, keyOf(owner), owner)
	}
}

// Anyone with Temporal access can start a workflow of any type under a
// joiner's ID, or a new run after the real chain ended: such a run neither
// shields the joiner's holdings as "live" nor condemns them; the key is
// left alone and reported unjudged. A rogue generation that holds no entry
// decides nothing either.
func TestReconcileIsNotFooledByForeignRuns(t *testing.T) {
	ctx := context.Background()
	// A running workflow of another type named joiner-320.
	f := newRecFixture("320", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "")
	f.tmp.types = map[string]string{"joiner-320": "Evil"}
	list, err := f.r.ReconcileListOrphans(ctx, ReconcileListInput{})
	require.NoError(t, err)
	require.Zero(t, list.Live)
	require.Equal(t, []string{"320"}, list.Unjudged)
	_, err = f.r.ReconcileRevokeOrphan(ctx, ReconcileRevokeInput{Key: "320"})
	require.Error(t, err)

	// The entry's run continued as new; the latest run is of another
	// chain (started under the ID after the joiner completed).
	f = newRecFixture("321", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "")
	f.dir.entries["joiner-321"][0].OwnerRun = "run-0"
	f.tmp.older = map[string]enumspb.WorkflowExecutionStatus{"run-0": enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW}
	f.tmp.first = map[string]string{"run-0": "run-0"}
	_, err = f.r.ReconcileRevokeOrphan(ctx, ReconcileRevokeInput{Key: "321"})
	require.ErrorContains(t, err, "not of the chain")
	// Of its own chain, the latest run decides (terminated: orphan).
	f.tmp.first = nil
	o := f.revoke(t, "321")
	require.Equal(t, "Terminated", o.Status)
	require.NotEmpty(t, f.dir.calls)

	// A closed rogue "generation" that holds no entry: the live joiner's
	// holdings stay its own.
	f = newRecFixture("322", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "")
	f.tmp.generations = []string{"joiner-322~g9"}
	f.tmp.status["joiner-322~g9"] = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	o = f.revoke(t, "322")
	require.Empty(t, o.Items)
	require.Equal(t, "Running", o.Status)
	require.Empty(t, f.sec.calls)
	require.Empty(t, f.dir.calls)
}

// A reset joiner runs on under a new run of the same chain while its entry
// still names the run that created it (terminated by the reset): the chain
// holds it. A completed rehire's HR record carries the earlier
// employment's termination date: it does not end this one.
func TestReconcileKeepsResetJoinersAndCompletedRehires(t *testing.T) {
	f := newRecFixture("323", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "")
	f.dir.entries["joiner-323"][0].OwnerRun = "run-0"
	f.tmp.older = map[string]enumspb.WorkflowExecutionStatus{"run-0": enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED}
	f.tmp.first = map[string]string{"run-0": "run-0", "run-1": "run-0"}
	o := f.revoke(t, "323")
	require.Empty(t, o.Items)
	require.Equal(t, "Running", o.Status)
	require.Empty(t, f.dir.calls)
	require.Empty(t, f.sec.calls)

	f = newRecFixture("324", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "")
	gen := "joiner-324~g2"
	f.tmp.generations = []string{gen}
	f.tmp.status[gen] = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	f.tmp.result[gen] = closedResult{Outcome: "completed"}
	e := f.dir.entries["joiner-324"][0]
	e.Owner = gen
	f.dir.entries = map[string][]directory.ManagedEntry{gen: {e}}
	f.hr["324"] = hris.Worker{ID: "324", Status: "Active", HireDate: "2025-03-01", TerminationDate: "2024-01-31"}
	o = f.revoke(t, "324")
	require.Empty(t, o.Items, o.Reason)
	require.Empty(t, f.dir.calls)
	require.Empty(t, f.sec.calls)
	// Its own end: a termination after the hire date ends it.
	f.hr["324"] = hris.Worker{ID: "324", Status: "Terminated", HireDate: "2025-03-01", TerminationDate: "2026-01-31"}
	o = f.revoke(t, "324")
	require.NotEmpty(t, o.Items)
}

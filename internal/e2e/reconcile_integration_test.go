package e2e

// The reconciler on the real stack: `temporal workflow terminate` runs no
// joiner code, so a terminated contractor keeps its account, groups and
// initial credential, and a terminated service account its AppRole. The
// reconciler finds them (dry run: lists, changes nothing), revokes them
// (real run), finds nothing the next time, and never touches a running
// joiner's grants; a workflow that is not the Reconciler is refused.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// reconcilerOn runs the reconciler's worker on a private queue of its own
// (the harness's worker does not register it), with a short minimum age so
// the test's joiners qualify seconds after they were terminated.
func reconcilerOn(t *testing.T, h *Harness, minAge time.Duration) string {
	t.Helper()
	queue := h.Cfg.TaskQueue + "-rec"
	rec := run.NewReconcile(h.Acts, h.C, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec.TaskQueue = h.Cfg.TaskQueue // the joiners' queue; the reconciler runs on its own here
	rec.MinAge = minAge
	w := worker.New(h.C, queue, worker.Options{})
	run.RegisterReconciler(w, rec)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return queue
}

func reconcile(t *testing.T, h *Harness, queue string, in workflows.ReconcileInput) workflows.ReconcileReport {
	t.Helper()
	// A full scan judges every joiner the shared stack has seen (thousands
	// by now), on two shared cores.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	wr, err := h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("joinery-reconciler-it-%d", rand.IntN(1e9)),
		TaskQueue: queue, WorkflowExecutionTimeout: 10 * time.Minute}, workflows.Reconciler, in)
	require.NoError(t, err)
	var rep workflows.ReconcileReport
	require.NoError(t, wr.Get(ctx, &rep))
	return rep
}

func orphanOf(rep workflows.ReconcileReport, key string) *activities.Orphan {
	for i := range rep.Orphans {
		if rep.Orphans[i].Key == key {
			return &rep.Orphans[i]
		}
	}
	return nil
}

func orphanSummary(rep workflows.ReconcileReport) []string {
	var out []string
	for _, o := range rep.Orphans {
		out = append(out, fmt.Sprintf("%s %s %d items", o.WorkflowID, o.Status, len(o.Items)))
	}
	return out
}

func kinds(o *activities.Orphan) []string {
	var out []string
	for _, it := range o.Items {
		out = append(out, it.Kind)
	}
	slices.Sort(out)
	return out
}

// startContractor enters a contractor starting today, ending in 30 days,
// and brings its joiner to Active.
func startContractor(t *testing.T, h *Harness, last string) (string, workflows.Status) {
	t.Helper()
	ctx := context.Background()
	today := time.Now().UTC()
	id, err := AddEmployee(ctx, h.EP, map[string]string{
		"firstName": "Recon", "lastName": last, "department": "Engineering", "jobTitle": "Contractor",
		"location": "DE-Berlin", "supervisorEId": "100", "hireDate": today.Format(time.DateOnly),
		"terminationDate":         today.AddDate(0, 0, 30).Format(time.DateOnly),
		"employmentHistoryStatus": "Contractor", "status": "Active",
	})
	require.NoError(t, err)
	t.Cleanup(func() { h.cleanup(id, false) })
	res, err := run.StartJoiner(ctx, h.C, h.Cfg, workflows.JoinerInput{HRISID: id, Kind: "contractor", Source: "test"})
	require.NoError(t, err)
	require.Equal(t, run.Started, res.Outcome)
	h.ApproveWhenAsked(id)
	return id, waitActive(t, h, id)
}

func waitActive(t *testing.T, h *Harness, id string) workflows.Status {
	t.Helper()
	var st workflows.Status
	var err error
	require.Eventually(t, func() bool {
		st, _, _, err = run.Status(context.Background(), h.C, id)
		return err == nil && st.Stage == workflows.StageActive
	}, 2*time.Minute, 200*time.Millisecond, "joiner %s never became active (stage %s, err %v)", id, st.Stage, err)
	return st
}

// holdings is what a joiner holds on the real servers.
type holdings struct {
	entryEnabled bool
	groups       []string
	secret       bool
	role         bool
}

func holdingsOf(t *testing.T, h *Harness, key string, nonHuman bool) holdings {
	t.Helper()
	ctx := context.Background()
	var out holdings
	e, err := h.Dir.FindByOwner(ctx, workflows.JoinerWorkflowID(key))
	require.NoError(t, err)
	require.NotNil(t, e, "the entry of %s stays (disabled, for the audit trail)", key)
	out.entryEnabled = !directory.IsDisabled(e)
	for _, g := range h.groups {
		in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN(g), e.DN)
		require.NoError(t, err)
		if in {
			out.groups = append(out.groups, g)
		}
	}
	_, out.secret, err = h.Sec.Metadata(ctx, h.Sec.JoinerPath(key, "initial-credential"))
	require.NoError(t, err)
	if nonHuman {
		role, _ := activities.WorkloadNames(key)
		out.role, err = h.Sec.AppRoleExists(ctx, role)
		require.NoError(t, err)
	}
	return out
}

func TestReconcilerRevokesTerminatedJoinersOnTheRealStack(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	queue := reconcilerOn(t, h, 2*time.Second)

	// A contractor and a service account, active mid-life, then
	// terminated: no joiner code runs, everything they were given stays.
	contractor, _ := startContractor(t, h, fmt.Sprintf("Term%d", rand.IntN(1e6)))
	name := fmt.Sprintf("it-recon-%d", rand.IntN(1e6))
	sa := workflows.NonHumanKey(name, "staging")
	h.CleanupNonHuman(sa)
	res, err := run.StartJoiner(ctx, h.C, h.Cfg, workflows.JoinerInput{HRISID: sa, Kind: "service-account", Source: "test",
		Request: &activities.NonHumanRequest{Name: name, SponsorID: "100", Environment: "staging", Purpose: "reconciler test",
			StartDate: time.Now().UTC().Format(time.DateOnly), EndDate: time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)}})
	require.NoError(t, err)
	require.Equal(t, run.Started, res.Outcome)
	h.ApproveWhenAsked(sa)
	sst := waitActive(t, h, sa)
	require.NotNil(t, sst.Workload)

	// The service account's workload logs in once, so a token exists to
	// prove revocation reaches tokens already issued.
	tok, err := os.ReadFile(activities.FileInbox{Dir: h.Cfg.InboxDir}.HandoverPath("ada.lovelace", sa))
	require.NoError(t, err)
	sec, err := unwrap(h.EP.VaultAddr, strings.TrimSpace(string(tok)))
	require.NoError(t, err)
	secretID, _ := sec.Data["secret_id"].(string)
	anon := vaultClient(t, h.EP.VaultAddr, "")
	login, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": sst.Workload.RoleID, "secret_id": secretID})
	require.NoError(t, err)
	root := vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken)
	inside := fmt.Sprintf("secret/data/workloads/%s/staging/app", name)
	_, err = root.Logical().Write(inside, map[string]any{"data": map[string]any{"dsn": "postgres://x"}})
	require.NoError(t, err)
	wl := vaultClient(t, h.EP.VaultAddr, login.Auth.ClientToken)
	_, err = wl.Logical().Read(inside)
	require.NoError(t, err, "the workload's token reads its grant")

	// A third joiner stays running: its grants must survive every run.
	live, _ := startContractor(t, h, fmt.Sprintf("Live%d", rand.IntN(1e6)))
	liveBefore := holdingsOf(t, h, live, false)
	require.True(t, liveBefore.entryEnabled)
	require.NotEmpty(t, liveBefore.groups)
	require.True(t, liveBefore.secret)

	for _, k := range []string{contractor, sa} {
		require.NoError(t, h.C.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(k), "", "reconciler test: terminate mid-life"))
	}
	cBefore, sBefore := holdingsOf(t, h, contractor, false), holdingsOf(t, h, sa, true)
	require.Equal(t, holdings{entryEnabled: true, groups: cBefore.groups, secret: true}, cBefore, "terminate left the contractor's access")
	require.NotEmpty(t, cBefore.groups)
	require.True(t, sBefore.entryEnabled && sBefore.role && len(sBefore.groups) > 0, "terminate left the service account's access: %+v", sBefore)
	time.Sleep(3 * time.Second) // past the test's minimum age
	keys := []string{contractor, sa, live}

	// Dry run: lists both, changes nothing on the servers.
	start := time.Now()
	dry := reconcile(t, h, queue, workflows.ReconcileInput{DryRun: true, Keys: keys})
	t.Logf("dry run over %d joiners: %s, report %+v", len(keys), time.Since(start).Round(time.Millisecond), dry)
	require.True(t, dry.DryRun)
	require.Equal(t, 3, dry.Judged)
	require.Equal(t, 1, dry.Live, "the running joiner is live")
	co, so := orphanOf(dry, contractor), orphanOf(dry, sa)
	require.NotNil(t, co)
	require.NotNil(t, so)
	require.Nil(t, orphanOf(dry, live))
	require.Equal(t, "Terminated", co.Status)
	require.Contains(t, kinds(co), activities.ItemEntry)
	require.Contains(t, kinds(co), activities.ItemMembership)
	require.Contains(t, kinds(co), activities.ItemSecret)
	require.Contains(t, kinds(so), activities.ItemAppRole)
	require.Contains(t, kinds(so), activities.ItemEntry)
	require.Zero(t, dry.Revoked)
	for _, it := range co.Items {
		if it.Kind == activities.ItemSecret {
			require.Contains(t, it.Detail, "wrap accessors", "the manager's unredeemed handover is listed by accessor")
		}
	}
	require.Equal(t, cBefore, holdingsOf(t, h, contractor, false), "a dry run changes nothing")
	require.Equal(t, sBefore, holdingsOf(t, h, sa, true), "a dry run changes nothing")
	_, err = wl.Logical().Read(inside)
	require.NoError(t, err, "after a dry run the workload's token still works")

	// The full listing (directory and Temporal, no keys) finds them too.
	start = time.Now()
	scan := reconcile(t, h, queue, workflows.ReconcileInput{DryRun: true})
	t.Logf("full dry-run scan in %s: judged %d, live %d, kept %d, clean %d, orphans %d, unjudged %d, more %v (%+v)",
		time.Since(start).Round(time.Millisecond), scan.Judged, scan.Live, scan.Kept, scan.Clean, len(scan.Orphans), len(scan.Unjudged), scan.More,
		orphanSummary(scan))
	// A run pages through every candidate (marked entries and joiners
	// closed within 30 days): both terminated joiners are found whatever
	// else the shared stack holds.
	require.False(t, scan.More, "one run covers the whole shared stack")
	require.NotNil(t, orphanOf(scan, contractor), "the directory listing finds the terminated contractor")
	require.NotNil(t, orphanOf(scan, sa), "the directory listing finds the terminated service account")
	require.Nil(t, orphanOf(scan, live))
	require.Zero(t, scan.Revoked)
	require.Equal(t, cBefore, holdingsOf(t, h, contractor, false))

	// Real run: everything revoked, verified on the servers.
	start = time.Now()
	real := reconcile(t, h, queue, workflows.ReconcileInput{Keys: keys})
	t.Logf("real run: %s, found %d, revoked %d, failed %d", time.Since(start).Round(time.Millisecond), real.Found, real.Revoked, real.Failed)
	require.Empty(t, real.Errors)
	require.Zero(t, real.Failed)
	require.Equal(t, real.Found, real.Revoked)
	require.Positive(t, real.Revoked)
	require.Equal(t, holdings{}, holdingsOf(t, h, contractor, false), "contractor: entry disabled, no groups, no credential")
	require.Equal(t, holdings{}, holdingsOf(t, h, sa, true), "service account: entry disabled, no groups, no AppRole")
	role, err := root.Logical().Read("auth/approle/role/" + sst.Workload.RoleName)
	require.NoError(t, err)
	require.Nil(t, role, "the AppRole (and with it every SecretID) is deleted")
	_, err = wl.Logical().Read(inside)
	require.Error(t, err, "a token issued before the reconciler ran has lost its permissions")
	_, err = anon.Logical().Write("auth/approle/login", map[string]any{"role_id": sst.Workload.RoleID, "secret_id": secretID})
	require.Error(t, err, "no login with the old role")
	require.Equal(t, liveBefore, holdingsOf(t, h, live, false), "the running joiner's grants are untouched")
	// The contractor's wrapped initial credential, never redeemed by the
	// manager, unwraps to nothing now: the reconciler ended the handover.
	ctok, err := os.ReadFile(activities.FileInbox{Dir: h.Cfg.InboxDir}.HandoverPath("ada.lovelace", contractor))
	require.NoError(t, err)
	_, err = unwrap(h.EP.VaultAddr, strings.TrimSpace(string(ctok)))
	require.Error(t, err, "the terminated contractor's handover no longer unwraps")

	// The connector only asks about workload roles: not the worker's own.
	_, err = h.Sec.AppRoleExists(ctx, "joinery-worker")
	require.Error(t, err)

	// Again: nothing left to find (idempotent).
	again := reconcile(t, h, queue, workflows.ReconcileInput{Keys: keys})
	require.Zero(t, again.Found, "%+v", again)
	require.Equal(t, 2, again.Clean)
	require.Equal(t, 1, again.Live)
	require.Equal(t, liveBefore, holdingsOf(t, h, live, false))
	// The running contractor's handover was never touched: it still
	// unwraps, once, for its manager.
	ltok, err := os.ReadFile(activities.FileInbox{Dir: h.Cfg.InboxDir}.HandoverPath("ada.lovelace", live))
	require.NoError(t, err)
	_, err = unwrap(h.EP.VaultAddr, strings.TrimSpace(string(ltok)))
	require.NoError(t, err, "the running joiner's handover still unwraps")

	// The running joiner is still running and still Active.
	st, _, _, err := run.Status(ctx, h.C, live)
	require.NoError(t, err)
	require.Equal(t, workflows.StageActive, st.Stage)
}

// Entries younger than the minimum age are listed as young, never revoked:
// the race with a joiner that created them seconds ago.
func TestReconcilerSkipsYoungEntriesOnTheRealStack(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	queue := reconcilerOn(t, h, time.Hour)
	id, _ := startContractor(t, h, fmt.Sprintf("Young%d", rand.IntN(1e6)))
	require.NoError(t, h.C.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(id), "", "reconciler test"))
	before := holdingsOf(t, h, id, false)
	rep := reconcile(t, h, queue, workflows.ReconcileInput{Keys: []string{id}})
	o := orphanOf(rep, id)
	require.NotNil(t, o)
	require.Empty(t, o.Items, "nothing old enough to revoke")
	require.NotEmpty(t, o.Young)
	require.Zero(t, rep.Revoked)
	require.Equal(t, before, holdingsOf(t, h, id, false), "young holdings are untouched")
}

// A workflow that is not the Reconciler is refused by the reconcile
// activities; a rogue that calls itself "Reconciler" only gets what the
// reconciler would do anyway: a running joiner's grants stay.
func TestRogueCannotUseTheReconcileActivities(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	queue := reconcilerOn(t, h, time.Second)
	live, _ := startContractor(t, h, fmt.Sprintf("Rogue%d", rand.IntN(1e6)))
	before := holdingsOf(t, h, live, false)

	rogueQueue := fmt.Sprintf("rogue-rec-%d", rand.IntN(1e9))
	w := worker.New(h.C, rogueQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(rogueWorkflow(queue), workflow.RegisterOptions{Name: "Evil"})
	w.RegisterWorkflowWithOptions(rogueWorkflow(queue), workflow.RegisterOptions{Name: activities.JoinerWorkflowType})
	w.RegisterWorkflowWithOptions(rogueWorkflow(queue), workflow.RegisterOptions{Name: activities.ReconcilerWorkflowType})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	order := func(typ, wfID, act string, input map[string]any) rogueOutcome {
		t.Helper()
		wr, err := h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: rogueQueue,
			WorkflowExecutionTimeout: time.Minute}, typ, rogueOrder{Activity: act, Input: input})
		require.NoError(t, err)
		var out rogueOutcome
		require.NoError(t, wr.Get(ctx, &out))
		return out
	}
	suffix := rand.IntN(1e9)
	for _, typ := range []string{"Evil", activities.JoinerWorkflowType} {
		for _, act := range []string{"ReconcileRevokeOrphan", "ReconcileListOrphans", "ReconcileIndexHandovers", "ReconcileRecordMetrics"} {
			out := order(typ, fmt.Sprintf("joiner-%s-%s-%d", live, act, suffix), act, map[string]any{"key": live})
			require.Equal(t, activities.ErrTypeOrderRefused, out.Type, "%s calling %s: %s", typ, act, out.Message)
		}
	}
	// Named Reconciler, on its own queue: the server says where it runs,
	// and the activities refuse it before judging anything.
	for _, key := range []string{live, "../" + live} {
		out := order(activities.ReconcilerWorkflowType, fmt.Sprintf("rogue-reconciler-%d-%d", suffix, len(key)), "ReconcileRevokeOrphan", map[string]any{"key": key})
		require.Equal(t, activities.ErrTypeOrderRefused, out.Type, out.Message)
		require.Contains(t, out.Message, "not this worker's")
	}
	require.Equal(t, before, holdingsOf(t, h, live, false), "the running joiner's grants are untouched")
}

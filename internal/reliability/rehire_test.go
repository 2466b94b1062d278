//go:build reliability

package reliability

// Rehire in the reliability suite (issue 10, item 8): a leaver whose entry
// Joinery created and whose leaver process disabled it is rehired with
// `starter rehire` — a new generation joiner-<id>~g2 that re-enables the
// same DN by one asserted LDAP modify moving the ownership marker
// (connectors/directory/rehire.go). The faults: the worker killed -9 right
// after that take-over reached slapd; a rescind of the provisioned rehire
// with the worker killed right after the rollback's re-disable, and right
// after its marker hand-back; and concurrent rehire starts for one person.
//
// Adversaries, all on the operator's side of `starter rehire` (anyone with
// Temporal access and the CLI's configuration): starting the rehire twice
// at once, starting a generation the directory does not name (joiner-<id>~g3
// straight through Temporal), or starting the person as a new hire instead.
// Each must end with a clear outcome and change nothing; only the one
// generation the entry's marker names, once approved, may re-enable it.

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

var flagStarterBin = flag.String("starter-bin", "", "starter binary for `starter rehire` (default: REPO/bin/starter from `make build`)")

// rehirePolicyLine is the rehire section the dev policy lacks (a policy
// without one leaves rehires to an operator); the e2e rehire test adds the
// same line.
const rehirePolicyLine = "\nrehire: {mode: reenable, max_gap: 730d}\n"

// withRehirePolicy restarts the worker on the dev policy plus a rehire
// section and returns what puts the original policy back. The suite's
// stack starts the worker on the dev policy, and a policy change is only
// safe between scenarios: the full suite runs them one at a time, and
// every earlier joiner rests (a policy change moves the plan of a joiner in
// flight).
func (su *Suite) withRehirePolicy() func() {
	t := su.t
	src, err := os.ReadFile(filepath.Join(su.Repo, "testdata", "policy", "default.yaml"))
	require.NoError(t, err)
	file := filepath.Join(su.S.Dir, "policy-rehire.yaml")
	require.NoError(t, os.WriteFile(file, append(src, []byte(rehirePolicyLine)...), 0o600))
	w := su.S.Worker
	swap := func(policy string) {
		w.Stop()
		var env []string
		for _, kv := range w.Env {
			if !strings.HasPrefix(kv, "JOINERY_POLICY_FILE=") {
				env = append(env, kv)
			}
		}
		w.Env = append(env, "JOINERY_POLICY_FILE="+policy)
		require.NoError(t, w.StartChecked(2*time.Second))
	}
	var old string
	for _, kv := range w.Env {
		if v, ok := strings.CutPrefix(kv, "JOINERY_POLICY_FILE="); ok {
			old = v
		}
	}
	require.NotEmpty(t, old, "the worker's environment names its policy")
	swap(file)
	return func() { swap(old) }
}

// leaver is a person the suite rehires: HR says Active with a new hire
// date after an earlier termination, and the directory holds the entry
// generation 1 created (the worker's bind, its marker and run), disabled
// the way Joinery's Disable leaves it.
type leaver struct {
	joiner
	// DN and Username are generation 1's entry.
	DN, Username string
	// Prev is generation 1's marker, which a rollback must hand back.
	Prev Owner
	// Gen is the rehire's workflow ID (joiner-<id>~g2).
	Gen string
}

// leavers enters n of them.
func (su *Suite) leavers(ctx context.Context, tag string, n int) []leaver {
	t := su.t
	dir, err := directory.New(run.DirectoryConfig(su.D.Cfg))
	require.NoError(t, err)
	out := make([]leaver, n)
	for i := range out {
		tok := su.name(tag)
		id, err := e2e.AddEmployee(ctx, su.S.EP, map[string]string{
			"firstName": "Rel", "lastName": tok, "department": "Engineering", "jobTitle": "Engineer",
			"location": "DE-Berlin", "supervisorEId": "100",
			// Rehired from tomorrow: provisioned now and held in Provisioned,
			// where a rescind still rolls back.
			"hireDate":                time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly),
			"terminationDate":         time.Now().UTC().AddDate(0, -6, 0).Format(time.DateOnly),
			"employmentHistoryStatus": "Full-Time", "status": "Active",
		})
		require.NoError(t, err)
		g1 := workflows.JoinerWorkflowID(id)
		runID := make([]byte, 16)
		_, _ = crand.Read(runID)
		prev := Owner{Joiner: g1, Run: hex.EncodeToString(runID)}
		user := strings.ToLower("rel." + tok)
		acct, err := dir.Claim(ctx, user, directory.Person{EmployeeID: id, Owner: prev.Joiner, OwnerRun: prev.Run,
			GivenName: "Rel", Surname: tok, DisplayName: "Rel " + tok})
		require.NoError(t, err, "generation 1's entry for %s", id)
		require.NoError(t, dir.Disable(ctx, acct.DN, g1), "the leaver disables %s", acct.DN)
		out[i] = leaver{joiner: joiner{ID: id, Token: strings.ToLower(tok)}, DN: acct.DN, Username: acct.Username,
			Prev: prev, Gen: workflows.RehireWorkflowID(id, 2)}
	}
	return out
}

// cliResult is one run of the operator CLI.
type cliResult struct {
	Code           int
	Stdout, Stderr string
	// Rehire is `starter rehire --json`'s answer, when it printed one.
	Rehire struct {
		WorkflowID string `json:"workflowId"`
		RunID      string `json:"runId"`
		Outcome    string `json:"outcome"`
		DN         string `json:"dn"`
		Previous   string `json:"previousJoiner"`
	}
}

// starter runs the real operator CLI against the private stack, straight
// to the servers (the CLI is not the worker: no proxy, no fault).
func (su *Suite) starter(ctx context.Context, args ...string) cliResult {
	bin := *flagStarterBin
	if bin == "" {
		bin = filepath.Join(su.Repo, "bin", "starter")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range su.S.ClientEnv(su.Repo) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		su.t.Fatalf("starter %v: %v", args, err)
	}
	if len(args) > 0 && args[0] == "rehire" {
		_ = json.Unmarshal(stdout.Bytes(), &r.Rehire)
	}
	return r
}

// rehire starts the rehire of l with `starter rehire` and requires it to
// start generation 2.
func (su *Suite) rehire(ctx context.Context, l leaver) {
	r := su.starter(ctx, "rehire", l.ID, "--json", "--as", "reliability")
	require.Equal(su.t, 0, r.Code, "starter rehire %s: %s%s", l.ID, r.Stdout, r.Stderr)
	require.Equal(su.t, string(run.Started), r.Rehire.Outcome)
	require.Equal(su.t, l.Gen, r.Rehire.WorkflowID, "the generation after the one the entry's marker names")
	require.True(su.t, strings.EqualFold(l.DN, r.Rehire.DN), "the rehire re-enables the leaver's DN %s, not %s", l.DN, r.Rehire.DN)
}

// Matchers on the wire: the modifications of one LDAP modify request.

type ldapChange struct {
	Op     int64 // 0 add, 1 delete, 2 replace (RFC 4511)
	Attr   string
	Values []string
}

// modifyChanges decodes the changes of an LDAP ModifyRequest (nil for any
// other message; controls, such as the assertion, are not changes).
func modifyChanges(body []byte) []ldapChange {
	pkt, err := ber.DecodePacketErr(body)
	if err != nil || len(pkt.Children) < 2 || pkt.Children[1].Tag != 6 || len(pkt.Children[1].Children) < 2 {
		return nil
	}
	var out []ldapChange
	for _, c := range pkt.Children[1].Children[1].Children {
		if len(c.Children) < 2 || len(c.Children[1].Children) < 1 {
			continue
		}
		op, _ := c.Children[0].Value.(int64)
		pa := c.Children[1]
		ch := ldapChange{Op: op, Attr: strings.ToLower(fmt.Sprint(pa.Children[0].Value))}
		if len(pa.Children) > 1 {
			for _, v := range pa.Children[1].Children {
				ch.Values = append(ch.Values, v.Data.String())
			}
		}
		out = append(out, ch)
	}
	return out
}

// ldapModOfEntry matches a modify of l's entry that contains a change
// accepted by want.
func ldapModOfEntry(l leaver, want func(ldapChange) bool) func(Request) bool {
	return func(r Request) bool {
		if r.Op != "modify" || !strings.EqualFold(strings.TrimSpace(r.Target), l.DN) {
			return false
		}
		for _, c := range modifyChanges(r.Body) {
			if want(c) {
				return true
			}
		}
		return false
	}
}

func (c ldapChange) adds(attr, value string) bool {
	if c.Op != 0 && c.Op != 2 || c.Attr != strings.ToLower(attr) {
		return false
	}
	for _, v := range c.Values {
		if v == value {
			return true
		}
	}
	return false
}

// ldapTakeOverOf matches the take-over: the modify that adds the new
// generation's marker (and removes the old one and the disabled marker).
func ldapTakeOverOf(l leaver) func(Request) bool {
	return ldapModOfEntry(l, func(c ldapChange) bool { return c.adds(directory.JoinerAttribute, l.Gen) })
}

// ldapReDisableOf matches the rollback's first modify: the entry disabled
// again while it still carries the new generation's marker.
func ldapReDisableOf(l leaver) func(Request) bool {
	return ldapModOfEntry(l, func(c ldapChange) bool { return c.adds("description", directory.DisabledMarker) })
}

// ldapHandBackOf matches the rollback's second modify: the old marker
// added back.
func ldapHandBackOf(l leaver) func(Request) bool {
	return ldapModOfEntry(l, func(c ldapChange) bool { return c.adds(directory.JoinerAttribute, l.Prev.Joiner) })
}

// settleRehires waits for the rehires to close or rest in rest, audits the
// servers with each leaver's expectation and the marker its entry must
// carry, requires the counts a live rehire holds (one entry, its groups
// once, one readable credential version and one live wrapping token each),
// and records a table row.
func (su *Suite) settleRehires(ctx context.Context, fault string, ls []leaver, want Expect, owner func(leaver) Owner, rest ...workflows.Stage) Report {
	t := su.t
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.Gen
	}
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	settled := su.D.WaitAll(wctx, ids, rest...)
	stages := map[string]int{}
	var problems []string
	wantAll := map[string]Expect{}
	owners := map[string]Owner{}
	groups := 0
	for _, l := range ls {
		s := settled[l.Gen]
		stages[string(s.Stage)]++
		e, err := ExpectOf(s)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case want == Live && e != Live, want == HandedBack && e != Gone:
			problems = append(problems, fmt.Sprintf("rehire %s: ended %s (%s), wanted %s", l.Gen, s.Stage, s.Status, want))
		}
		wantAll[l.ID] = want
		owners[l.ID] = owner(l)
		if want == Live {
			st, _, _, err := run.Status(ctx, su.D.C, l.Gen)
			require.NoError(t, err)
			groups += len(st.Plan.Groups)
		}
	}
	rep, err := su.A.AuditOwners(ctx, wantAll, owners)
	require.NoError(t, err, "audit")
	if want == Live {
		n := len(ls)
		for what, got := range map[string][2]int{"entries": {rep.Entries, n}, "memberships": {rep.Memberships, groups},
			"live wrapping tokens": {rep.WrapTokens, n}, "write-backs": {rep.WriteBacks, n}} {
			if got[0] != got[1] {
				problems = append(problems, fmt.Sprintf("%d %s on the servers for %d live rehires, want %d", got[0], what, n, got[1]))
			}
		}
		// One credential handed over: exactly one readable version of it
		// (rep.Secrets also counts each joiner's handover ledger).
		for _, l := range ls {
			live, err := su.A.liveVersions(ctx, su.A.PathPrefix+"/"+l.ID+"/initial-credential")
			require.NoError(t, err)
			if live != 1 {
				problems = append(problems, fmt.Sprintf("rehire %s: %d readable versions of its initial credential, want 1", l.Gen, live))
			}
		}
	}
	row := Row{Fault: fault, Runs: len(ls), Survived: stageSummary(stages), Lost: "nothing"}
	if lost := len(rep.Findings) + len(problems); lost > 0 {
		row.Lost = fmt.Sprintf("%d finding(s)", lost)
	}
	su.tab.mu.Lock()
	su.tab.rows = append(su.tab.rows, row)
	su.tab.mu.Unlock()
	for _, f := range rep.Findings {
		t.Errorf("%s: %s", fault, f)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", fault, p)
	}
	t.Logf("%s: %d rehires, %s; servers: %d entries, %d memberships, %d secrets, %d wrapping tokens, %d write-backs",
		fault, len(ls), row.Survived, rep.Entries, rep.Memberships, rep.Secrets, rep.WrapTokens, rep.WriteBacks)
	return rep
}

// runOf is the run ID of a workflow's current run.
func (su *Suite) runOf(ctx context.Context, id string) string {
	desc, err := su.D.C.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(su.t, err)
	return desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

// rehireAuditorCatches proves the auditor's rehire checks can fail before a
// rehire row means anything: a generation-2 entry planted by hand must be
// counted as its person's (a duplicate beside generation 1's is reported),
// a wrong marker and an enabled entry after a hand-back are reported, and
// a deleted one is; the row is added once per run.
func rehireAuditorCatches(su *Suite) {
	t := su.t
	ctx := context.Background()
	ls := su.leavers(ctx, "rplant", 1)
	l := ls[0]
	a := su.A
	var got []string
	check := func(want Expect, o Owner, finding string) {
		rep, err := a.AuditOwners(ctx, map[string]Expect{l.ID: want}, map[string]Owner{l.ID: o})
		require.NoError(t, err)
		require.Contains(t, fmt.Sprint(rep.Findings), finding, "the auditor must report %q", finding)
		got = append(got, finding)
	}
	rep, err := a.AuditOwners(ctx, map[string]Expect{l.ID: HandedBack}, map[string]Owner{l.ID: l.Prev})
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "a leaver's disabled generation-1 entry is what a rolled-back rehire leaves")
	check(HandedBack, Owner{Joiner: l.Gen}, "carries the marker "+l.Prev.Joiner)
	check(HandedBack, Owner{Joiner: l.Prev.Joiner, Run: "another-run"}, "want "+l.Prev.Joiner+" (run \"another-run\")")
	check(Live, Owner{Joiner: l.Gen}, "entry of a provisioned rehire is disabled")

	conn, err := dialRoot(su)
	require.NoError(t, err)
	defer conn.Close()
	// Enabled again by hand: a hand-back that did not re-disable.
	require.NoError(t, conn.Modify(modify(l.DN, ldapChange{Op: 1, Attr: "description", Values: []string{directory.DisabledMarker}})))
	check(HandedBack, l.Prev, "entry still enabled after the rehire's rollback")
	// A second entry under generation 2's marker: a take-over that created
	// instead of re-enabling.
	dup := "uid=" + l.Username + "x,ou=people," + su.S.EP.LDAPBaseDN
	add := addRequest(dup, l, l.Gen)
	require.NoError(t, conn.Add(add))
	check(Live, Owner{Joiner: l.Gen}, "2 entries (duplicates)")
	require.NoError(t, conn.Del(delRequest(dup)))
	require.NoError(t, conn.Del(delRequest(l.DN)))
	check(HandedBack, l.Prev, "no entry after a rehire's rollback")
	su.tab.mu.Lock()
	defer su.tab.mu.Unlock()
	const fault = "auditor self-test: rehired entries planted and changed by hand on LDAP"
	for _, r := range su.tab.rows {
		if r.Fault == fault {
			return
		}
	}
	su.tab.rows = append(su.tab.rows, Row{Fault: fault, Runs: 1, Survived: fmt.Sprintf("%d findings reported", len(got)),
		Lost: "nothing (every plant reported; the leaver's entry audits clean)"})
}

// rehireCrashTakeOver: the take-over modify reaches slapd and the worker
// is killed -9 before its answer returns; Temporal retries ClaimRehire,
// which must find the entry already this run's. One entry, enabled, the
// new generation's marker and run, its groups once, one credential.
func rehireCrashTakeOver(runs int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		rehireAuditorCatches(su)
		defer su.withRehirePolicy()()
		ls := su.leavers(ctx, "rehire", runs)
		runsOf := map[string]string{}
		// One at a time: a kill meant for one rehire's take-over must not
		// land in another's credential issue (the known wrapping-token
		// window of "crash after Vault response-wrapped read" would then
		// show up in this row).
		for _, l := range ls {
			su.rehire(ctx, l)
			tr := su.S.LDAP.Arm("rehire take-over of "+l.ID, ldapTakeOverOf(l), su.kill)
			su.approveAll(ctx, []joiner{{ID: l.Gen, Token: l.Token}})
			su.awaitFired(ctx, "crash after the rehire take-over", []leaver{l}, []*Trigger{tr})
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			s := su.D.WaitSettled(wctx, l.Gen, workflows.StageProvisioned)
			cancel()
			require.NoError(su.t, s.Err, "rehire %s after the crash", l.Gen)
			runsOf[l.Gen] = su.runOf(ctx, l.Gen)
		}
		su.settleRehires(ctx, "rehire: crash after LDAP modify (take-over: marker moved, entry re-enabled)", ls, Live,
			func(l leaver) Owner { return Owner{Joiner: l.Gen, Run: runsOf[l.Gen]} }, workflows.StageProvisioned)
	}
}

// awaitFired requires every trigger to have fired: a row whose fault never
// landed proves nothing.
func (su *Suite) awaitFired(ctx context.Context, what string, ls []leaver, trs []*Trigger) {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for i, tr := range trs {
		select {
		case <-tr.Fired():
			su.t.Logf("%s: fired for %s on %s %s", what, ls[i].Gen, tr.Request.Op, tr.Request.Target)
		case <-fctx.Done():
			su.t.Errorf("%s: the fault never landed for %s (no matching request)", what, ls[i].Gen)
		}
	}
	su.S.LDAP.Disarm()
}

// rehireRollback provisions rehires, rescinds them, and kills the worker
// right after the rollback's re-disable (one group) or its marker
// hand-back (the other). The documented end state (UndoRehire): the entry
// kept, disabled, carrying generation 1's marker and run again; the
// rehire's memberships, credential and write-back gone.
func rehireRollback(runs int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		rehireAuditorCatches(su)
		defer su.withRehirePolicy()()
		faults := []struct {
			name  string
			match func(leaver) func(Request) bool
		}{
			{"rehire rescind: crash after LDAP modify (entry re-disabled, marker not yet handed back)", ldapReDisableOf},
			{"rehire rescind: crash after LDAP modify (marker handed back)", ldapHandBackOf},
		}
		ls := su.leavers(ctx, "rehback", len(faults)*runs)
		js := make([]joiner, len(ls))
		for i, l := range ls {
			su.rehire(ctx, l)
			js[i] = joiner{ID: l.Gen, Token: l.Token}
		}
		su.approveAll(ctx, js)
		// All provisioned before the first trigger is armed: the kills then
		// land only in rollbacks (every step of which is idempotent), never
		// in a credential issue still under way.
		pctx, pcancel := context.WithTimeout(ctx, 6*time.Minute)
		for _, l := range ls {
			s := su.D.WaitSettled(pctx, l.Gen, workflows.StageProvisioned)
			require.Equal(su.t, workflows.StageProvisioned, s.Stage, "rehire %s: %v", l.Gen, s.Err)
		}
		pcancel()
		// One rollback at a time, each to its end: a kill meant for one
		// rollback would otherwise cut another's claimed request on the
		// wire, and that fault would land without its trigger firing.
		for i, l := range ls {
			f := faults[i/runs]
			tr := su.S.LDAP.Arm(f.name+" "+l.ID, f.match(l), su.kill)
			wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
			if err := retry(wctx, func() error { return su.D.Rescind(wctx, l.Gen) }); err != nil {
				su.t.Errorf("rescind %s: %v", l.Gen, err)
			}
			su.awaitFired(ctx, "rehire rollback", []leaver{l}, []*Trigger{tr})
			s := su.D.WaitSettled(wctx, l.Gen)
			cancel()
			require.NoError(su.t, s.Err, "rehire %s after the crash in its rollback", l.Gen)
		}
		for i, f := range faults {
			group := ls[i*runs : (i+1)*runs]
			su.settleRehires(ctx, f.name, group, HandedBack, func(l leaver) Owner { return l.Prev })
		}
		// What an operator meets next: the person can be rehired again.
		// The marker names generation 1 again, so the next rehire is
		// generation 2 again, whose earlier run has closed: a new run of
		// it starts (it once answered "already running" for a closed run).
		before := su.runOf(ctx, ls[0].Gen)
		again := su.starter(ctx, "rehire", ls[0].ID, "--json", "--as", "reliability")
		require.Equal(su.t, 0, again.Code, "a second `starter rehire %s` after the rolled-back rehire: %s%s", ls[0].ID, again.Stdout, again.Stderr)
		require.Equal(su.t, "started", again.Rehire.Outcome)
		require.Equal(su.t, ls[0].Gen, again.Rehire.WorkflowID)
		require.NotEqual(su.t, before, su.runOf(ctx, ls[0].Gen), "a new run of the generation")
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		require.NoError(su.t, retry(rctx, func() error {
			return run.Signal(rctx, su.D.C, ls[0].Gen, workflows.SignalRescind, workflows.RescindSignal{By: "hr.reliability", Reason: "end the second rehire", Via: "api"})
		}))
	}
}

// rehireConcurrent races, for each leaver, four `starter rehire` at once, a
// plain `starter start` of the same person, and a start of the wrong
// generation (joiner-<id>~g3) straight through Temporal. Exactly one
// generation-2 run starts; the others are told it already runs, or are
// refused, and nothing on the servers changes until the winner's approval;
// then exactly one entry, enabled, with generation 2's marker, and a
// rehire started while it is live is refused.
func rehireConcurrent(runs int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		rehireAuditorCatches(su)
		defer su.withRehirePolicy()()
		const clis = 4
		ls := su.leavers(ctx, "rehrace", runs)
		type outcome struct {
			who string
			r   cliResult
			err error
		}
		results := make([][]outcome, len(ls))
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, l := range ls {
			record := func(o outcome) { mu.Lock(); results[i] = append(results[i], o); mu.Unlock() }
			for k := 0; k < clis; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					record(outcome{who: "rehire", r: su.starter(ctx, "rehire", l.ID, "--json", "--as", fmt.Sprintf("op%d", k))})
				}()
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				record(outcome{who: "start", r: su.starter(ctx, "start", l.ID)})
			}()
			go func() {
				defer wg.Done()
				_, err := su.D.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RehireWorkflowID(l.ID, 3),
					TaskQueue: su.D.Cfg.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL},
					workflows.Joiner, workflows.JoinerInput{HRISID: l.ID, Source: "reliability", Rehire: true})
				record(outcome{who: "g3", err: err})
			}()
		}
		wg.Wait()
		t := su.t
		for i, l := range ls {
			started, already := 0, 0
			for _, o := range results[i] {
				switch o.who {
				case "rehire":
					switch {
					case o.r.Code == 0 && o.r.Rehire.Outcome == string(run.Started) && o.r.Rehire.WorkflowID == l.Gen:
						started++
					case o.r.Code == 3 && o.r.Rehire.Outcome == string(run.AlreadyRunning) && o.r.Rehire.WorkflowID == l.Gen:
						already++
					default:
						t.Errorf("starter rehire %s: exit %d: %s%s", l.ID, o.r.Code, o.r.Stdout, o.r.Stderr)
					}
				case "start":
					require.NotEqual(t, 0, o.r.Code, "a plain start of a rehire is refused: %s%s", o.r.Stdout, o.r.Stderr)
					require.Contains(t, o.r.Stdout+o.r.Stderr, "starter rehire "+l.ID, "the refusal points to the rehire")
				case "g3":
					require.NoError(t, o.err, "Temporal lets anyone with access start a Joiner under any ID")
				}
			}
			require.Equal(t, 1, started, "exactly one of %d concurrent rehires of %s starts it (%d told it runs)", clis, l.ID, already)
			require.Equal(t, clis-1, already)
			// One run of generation 2, ever.
			list, err := su.D.C.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", l.Gen)})
			require.NoError(t, err)
			require.Len(t, list.GetExecutions(), 1, "runs of %s", l.Gen)
		}
		// The wrong generation ends refused, having changed nothing; the
		// winner waits for approval, having changed nothing either.
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		for _, l := range ls {
			g3 := workflows.RehireWorkflowID(l.ID, 3)
			s := su.D.WaitSettled(wctx, g3)
			require.NoError(t, s.Err)
			require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, s.Status, "%s fails", g3)
			err := su.D.C.GetWorkflow(wctx, g3, "").Get(wctx, nil)
			require.ErrorContains(t, err, "RehireRefused")
			require.ErrorContains(t, err, "runs as \""+l.Gen+"\"", "%s is told which generation the rehire runs as", g3)
			require.ErrorContains(t, err, "nothing was changed")
		}
		js := make([]joiner, len(ls))
		for i, l := range ls {
			js[i] = joiner{ID: l.Gen, Token: l.Token}
		}
		for _, l := range ls {
			s := su.D.WaitSettled(wctx, l.Gen, workflows.StageAwaitingApproval)
			require.Equal(t, workflows.StageAwaitingApproval, s.Stage, "%s: %v", l.Gen, s.Err)
		}
		untouched := map[string]Expect{}
		prev := map[string]Owner{}
		for _, l := range ls {
			untouched[l.ID], prev[l.ID] = HandedBack, l.Prev
		}
		rep, err := su.A.AuditOwners(ctx, untouched, prev)
		require.NoError(t, err)
		require.Empty(t, rep.Findings, "before the approval the leaver's entry is as the leaver left it")

		su.approveAll(ctx, js)
		runsOf := map[string]string{}
		for _, l := range ls {
			runsOf[l.Gen] = su.runOf(ctx, l.Gen)
		}
		su.settleRehires(ctx, fmt.Sprintf("rehire: %d concurrent `starter rehire`, a plain start and a start of the wrong generation for one person", clis),
			ls, Live, func(l leaver) Owner { return Owner{Joiner: l.Gen, Run: runsOf[l.Gen]} }, workflows.StageProvisioned)
		// A rehire of someone whose rehire is live is refused before any start.
		for _, l := range ls {
			r := su.starter(ctx, "rehire", l.ID, "--json")
			require.Equal(t, 3, r.Code, "starter rehire of a live rehire: %s%s", r.Stdout, r.Stderr)
			require.Contains(t, r.Stderr, "is not disabled")
		}
	}
}

// Plain LDAP as the rootdn, for the plants of rehireAuditorCatches.

func dialRoot(su *Suite) (*ldap.Conn, error) {
	conn, err := ldap.DialURL(su.S.EP.LDAPURL)
	if err != nil {
		return nil, err
	}
	if err := conn.Bind(su.S.EP.LDAPBindDN, su.S.EP.LDAPBindPassword); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func modify(dn string, changes ...ldapChange) *ldap.ModifyRequest {
	m := ldap.NewModifyRequest(dn, nil)
	for _, c := range changes {
		switch c.Op {
		case 0:
			m.Add(c.Attr, c.Values)
		case 1:
			m.Delete(c.Attr, c.Values)
		default:
			m.Replace(c.Attr, c.Values)
		}
	}
	return m
}

// addRequest is an entry for l's person carrying marker: what a take-over
// that created instead of re-enabling would leave.
func addRequest(dn string, l leaver, marker string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	r.Attribute("objectClass", []string{"inetOrgPerson", directory.ManagedClass})
	r.Attribute("cn", []string{"Rel " + l.Token})
	r.Attribute("sn", []string{l.Token})
	r.Attribute("uid", []string{l.Username + "x"})
	r.Attribute("employeeNumber", []string{l.ID})
	r.Attribute(directory.JoinerAttribute, []string{marker})
	return r
}

func delRequest(dn string) *ldap.DelRequest { return ldap.NewDelRequest(dn, nil) }

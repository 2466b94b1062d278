package reliability

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/workflows"
)

// Flags: the bounded subset (`go test`, part of `make test`) runs with the
// defaults; `make reliability` passes -joiners=200 with the reliability tag.
var (
	flagJoiners   = flag.Int("joiners", 20, "joiners in flight for the kill -9 scenario (make reliability: 200)")
	flagWorkerBin = flag.String("worker-bin", "", "worker binary (default: REPO/bin/worker from `make build`)")
	flagKeep      = flag.Bool("keep", false, "keep the private stack's directory for inspection")
)

// Row is one line of the results table.
type Row struct {
	Fault    string
	Runs     int
	Survived string
	Lost     string
}

// Suite is the private stack, the driver and the auditor shared by the
// scenarios of one test binary, plus the table they fill.
type Suite struct {
	t    *testing.T
	Repo string
	S    *Stack
	D    *Driver
	A    *Auditor
	tab  *table
}

// table collects the rows of every scenario of the run.
type table struct {
	mu   sync.Mutex
	rows []Row
	// seq makes names unique within the run (usernames derive from them).
	seq int
}

func newSuite(t *testing.T) *Suite {
	t.Helper()
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	bin := *flagWorkerBin
	if bin == "" {
		bin = filepath.Join(repo, "bin", "worker")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the worker binary %s is needed (run `make build`): %v", bin, err)
	}
	dir, err := os.MkdirTemp("", "joinery-reliability-")
	require.NoError(t, err)
	// The private HRIS must not deliver webhooks to the shared intake:
	// point them at a port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := l.Addr().String()
	require.NoError(t, l.Close())
	t.Setenv("JOINERY_STACK_WEBHOOK_URL", "http://"+dead+"/hris/webhook")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := StartStack(ctx, repo, dir, bin)
	if s != nil {
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Logf("stopping the private stack: %v", err)
			}
			if *flagKeep || t.Failed() {
				t.Logf("private stack kept in %s", dir)
			} else {
				_ = os.RemoveAll(dir)
			}
		})
	}
	require.NoError(t, err)
	t.Logf("private stack up in %s (state %s; Temporal %s)", time.Since(start).Round(time.Second), s.Cfg.StateDir, s.EP.TemporalAddress)
	require.NoError(t, s.Worker.StartChecked(2*time.Second))
	require.NoError(t, s.Sweeper.StartChecked(2*time.Second))
	d, err := NewDriver(ctx, s, repo)
	require.NoError(t, err)
	t.Cleanup(d.C.Close)
	su := &Suite{t: t, Repo: repo, S: s, D: d, A: &Auditor{
		LDAPURL: s.EP.LDAPURL, BindDN: s.EP.LDAPBindDN, BindPassword: s.EP.LDAPBindPassword, BaseDN: s.EP.LDAPBaseDN,
		VaultAddr: s.EP.VaultAddr, VaultToken: s.EP.VaultToken, KVMount: "secret", PathPrefix: secrets.DefaultPathPrefix,
		HRISURL: s.EP.HRISURL, HRISCompany: s.EP.HRISCompany, HRISAPIKey: s.EP.HRISAPIKey,
	}, tab: &table{}}
	t.Cleanup(su.printTable)
	return su
}

// name returns a unique surname token: usernames derive from it, so a
// trigger can recognise one joiner's requests on the wire.
func (su *Suite) name(tag string) string {
	su.tab.mu.Lock()
	defer su.tab.mu.Unlock()
	su.tab.seq++
	return fmt.Sprintf("%s%d%c%c", tag, su.tab.seq, 'a'+rand.IntN(26), 'a'+rand.IntN(26))
}

// joiner is one joiner of a scenario.
type joiner struct {
	ID, Token string
}

// hireAndStart enters n hires (provisioned now, start date tomorrow so
// they are held in Provisioned and can be rescinded) and starts them.
func (su *Suite) hireAndStart(ctx context.Context, tag string, n int) []joiner {
	su.t.Helper()
	out := make([]joiner, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range out {
		tok := su.name(tag)
		wg.Add(1)
		go func(i int, tok string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id, err := su.D.Hire(ctx, "Rel", tok, 1)
			if err != nil {
				errs <- err
				return
			}
			out[i] = joiner{ID: id, Token: strings.ToLower(tok)}
			res, err := su.D.Start(ctx, id)
			if err == nil && res.Outcome != "started" {
				err = fmt.Errorf("start %s: %s", id, res.Outcome)
			}
			if err != nil {
				errs <- err
			}
		}(i, tok)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(su.t, err)
	}
	return out
}

// approveAll approves every joiner (concurrently, retrying while the
// worker is being killed).
func (su *Suite) approveAll(ctx context.Context, js []joiner) {
	su.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(js))
	sem := make(chan struct{}, 8)
	for _, j := range js {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			actx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			errs <- su.D.Approve(actx, id)
		}(j.ID)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(su.t, err)
	}
}

// settle waits for every joiner to rest (Provisioned, Active or closed),
// audits the servers and records a table row. want overrides the
// expectation derived from the final stage (e.g. "must be gone").
func (su *Suite) settle(ctx context.Context, fault string, js []joiner, want map[string]Expect) Report {
	su.t.Helper()
	return su.settleIn(ctx, fault, js, want, []workflows.Stage{workflows.StageProvisioned, workflows.StageActive})
}

// settleIn waits until every joiner is closed or rests in one of rest.
func (su *Suite) settleIn(ctx context.Context, fault string, js []joiner, want map[string]Expect, rest []workflows.Stage) Report {
	su.t.Helper()
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	// A joiner that must be gone must also be closed: right after a
	// rescind it may still show Provisioned until the worker handles it.
	var resting, closing []string
	for _, id := range ids {
		if w, ok := want[id]; ok && w != Live {
			closing = append(closing, id)
		} else {
			resting = append(resting, id)
		}
	}
	settled := su.D.WaitAll(wctx, resting, rest...)
	for id, s := range su.D.WaitAll(wctx, closing) {
		settled[id] = s
	}
	expect := map[string]Expect{}
	var notSettled []string
	stages := map[string]int{}
	for _, id := range ids {
		s := settled[id]
		stages[string(s.Stage)]++
		e, err := ExpectOf(s)
		if err != nil {
			notSettled = append(notSettled, err.Error())
		}
		if w, ok := want[id]; ok {
			if err == nil && w != e {
				notSettled = append(notSettled, fmt.Sprintf("joiner %s: wanted %s, ended %s (%s)", id, w, s.Stage, s.Status))
			}
			e = w
		}
		expect[id] = e
	}
	rep, err := su.A.Audit(ctx, expect)
	require.NoError(su.t, err, "audit")
	row := Row{Fault: fault, Runs: len(js), Survived: stageSummary(stages)}
	lost := len(rep.Findings) + len(notSettled)
	if lost == 0 {
		row.Lost = "nothing"
	} else {
		row.Lost = fmt.Sprintf("%d finding(s)", lost)
	}
	su.tab.mu.Lock()
	su.tab.rows = append(su.tab.rows, row)
	su.tab.mu.Unlock()
	for _, f := range rep.Findings {
		su.t.Errorf("%s: %s", fault, f)
	}
	for _, m := range notSettled {
		su.t.Errorf("%s: %s", fault, m)
	}
	su.t.Logf("%s: %d joiners, %s; servers: %d entries, %d memberships, %d secrets, %d wrapping tokens, %d write-backs",
		fault, len(js), row.Survived, rep.Entries, rep.Memberships, rep.Secrets, rep.WrapTokens, rep.WriteBacks)
	return rep
}

func stageSummary(stages map[string]int) string {
	keys := make([]string, 0, len(stages))
	for k := range stages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", stages[k], orDash(k)))
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "(no stage)"
	}
	return s
}

func (su *Suite) printTable() {
	su.tab.mu.Lock()
	defer su.tab.mu.Unlock()
	if len(su.tab.rows) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\n| Fault | Runs | What survived | What was lost |\n|---|---|---|---|\n")
	for _, r := range su.tab.rows {
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", r.Fault, r.Runs, r.Survived, r.Lost)
	}
	fmt.Fprintf(&b, "worker kills: %d\n", su.S.Worker.Kills)
	su.t.Log(b.String())
	fmt.Print(b.String())
}

// kill is a trigger action: kill -9 the worker, start it again a second
// later (a supervisor would).
func (su *Suite) kill() { su.S.Worker.KillAndRestart(time.Second) }

// Matchers on the wire.

// ldapAddOf matches the LDAP add of the joiner's entry (carrying its
// ownership marker, joiner-<id>).
func ldapAddOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		return r.Op == "add" && bytes.Contains(r.Body, []byte("joiner-"+j.ID))
	}
}

// ldapGroupModOf matches an LDAP modify of a group that names the
// joiner's entry (grant or revoke of a membership).
func ldapGroupModOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		return r.Op == "modify" && strings.Contains(strings.ToLower(r.Target), "ou=groups,") &&
			bytes.Contains(bytes.ToLower(r.Body), []byte(j.Token))
	}
}

// ldapPasswordOf matches the request that sets the joiner's password: on
// OpenLDAP the Password Modify extended operation (RFC 3062) naming its
// entry, on AD a modify of unicodePwd / userPassword.
func ldapPasswordOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		switch r.Op {
		case "extended":
			return bytes.Contains(r.Body, []byte("1.3.6.1.4.1.4203.1.11.1")) && bytes.Contains(bytes.ToLower(r.Body), []byte(j.Token))
		case "modify":
			return strings.Contains(strings.ToLower(r.Target), j.Token) &&
				(bytes.Contains(r.Body, []byte("userPassword")) || bytes.Contains(r.Body, []byte("unicodePwd")))
		}
		return false
	}
}

// ldapDeleteOf matches the delete of the joiner's entry.
func ldapDeleteOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		return r.Op == "delete" && strings.Contains(strings.ToLower(r.Target), j.Token)
	}
}

// vaultWriteOf matches a write (PUT/POST) to the joiner's KV data path.
func vaultWriteOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		return (r.Op == "PUT" || r.Op == "POST") && strings.Contains(r.Target, "/secret/data/"+secrets.DefaultPathPrefix+"/"+j.ID+"/")
	}
}

// vaultWrapOf matches the read of the joiner's credential that Vault
// answers response-wrapped (X-Vault-Wrap-TTL): the wrapping token exists
// from then on, and only the answer names it.
func vaultWrapOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		return r.Op == "GET" && r.Header.Get("X-Vault-Wrap-TTL") != "" &&
			strings.Contains(r.Target, "/secret/data/"+secrets.DefaultPathPrefix+"/"+j.ID+"/")
	}
}

// vaultRevokeOf matches the destruction of the joiner's secret (metadata
// delete or destroy).
func vaultRevokeOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		p := r.Target
		return (r.Op == "DELETE" && strings.Contains(p, "/secret/metadata/"+secrets.DefaultPathPrefix+"/"+j.ID+"/")) ||
			((r.Op == "PUT" || r.Op == "POST") && strings.Contains(p, "/secret/destroy/"+secrets.DefaultPathPrefix+"/"+j.ID+"/"))
	}
}

// hrisWriteOf matches an update of the joiner's HR record (write-back or
// its undo).
func hrisWriteOf(j joiner) func(Request) bool {
	return func(r Request) bool {
		return r.Op == "POST" && strings.HasSuffix(strings.TrimRight(r.Target, "/"), "/employees/"+j.ID)
	}
}

// TestReliability runs the scenarios on one private stack, in order.
func TestReliability(t *testing.T) {
	su := newSuite(t)
	// Each scenario audits its own joiners, so one that fails does not
	// make the next ones fail: they all run and all get a row. The subset
	// runs its scenarios at once (the kills of one land on the other's
	// joiners too) to stay within a few minutes; the full suite runs them
	// one after the other so each fault's row is its own.
	// The checkers first: planted residue must be reported, or no row
	// below means anything.
	if !t.Run("auditor-self-test", func(t *testing.T) { auditorCatchesResidue(su.with(t)) }) {
		t.Fatal("the auditor missed planted residue; its verdicts on the scenarios would be worthless")
	}
	t.Run("scenarios", func(t *testing.T) {
		for _, sc := range scenarios() {
			t.Run(sc.name, func(t *testing.T) {
				if parallelScenarios {
					t.Parallel()
				}
				sc.run(su.with(t))
			})
		}
	})
}

// with returns a view of the suite that reports to t.
func (su *Suite) with(t *testing.T) *Suite {
	return &Suite{t: t, Repo: su.Repo, S: su.S, D: su.D, A: su.A, tab: su.tab}
}

type scenario struct {
	name string
	run  func(su *Suite)
}

package reliability

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/workflows"
)

var flagCrashRuns = flag.Int("crash-runs", 1, "joiners per crash-after-side-effect fault (make reliability: 3)")

// stepFault is a crash right after one side effect: the request reaches
// the server, the worker is killed -9 before the answer gets back.
type stepFault struct {
	name  string
	proxy func(*Stack) *Proxy
	match func(joiner) func(Request) bool
	// comp: the side effect is a compensation; the trigger is armed once the
	// joiner is Provisioned, and the joiner is then rescinded.
	comp bool
}

func viaLDAP(s *Stack) *Proxy  { return s.LDAP }
func viaVault(s *Stack) *Proxy { return s.Vault }
func viaHRIS(s *Stack) *Proxy  { return s.HRIS }

var (
	stepClaim    = stepFault{"crash after LDAP add (claim: entry created)", viaLDAP, ldapAddOf, false}
	stepGroup    = stepFault{"crash after LDAP modify (group granted)", viaLDAP, ldapGroupModOf, false}
	stepPassword = stepFault{"crash after LDAP modify (credential: password set)", viaLDAP, ldapPasswordOf, false}
	stepSecret   = stepFault{"crash after Vault KV write (credential stored)", viaVault, vaultWriteOf, false}
	stepWrite    = stepFault{"crash after HRIS update (write-back)", viaHRIS, hrisWriteOf, false}

	compWrite  = stepFault{"rescind: crash after HRIS update (write-back undone)", viaHRIS, hrisWriteOf, true}
	compSecret = stepFault{"rescind: crash after Vault destroy (credential revoked)", viaVault, vaultRevokeOf, true}
	compGroup  = stepFault{"rescind: crash after LDAP modify (group revoked)", viaLDAP, ldapGroupModOf, true}
	compDelete = stepFault{"rescind: crash after LDAP delete (entry deleted)", viaLDAP, ldapDeleteOf, true}
)

// crashAfter runs every fault at once, each on its own joiners (so the
// slow part, Temporal noticing a lost activity at its start-to-close
// timeout, overlaps), then audits each fault's joiners separately.
func crashAfter(faults ...stepFault) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		runs := *flagCrashRuns
		js := su.hireAndStart(ctx, "crash", len(faults)*runs)
		type armed struct {
			f  stepFault
			j  joiner
			tr *Trigger
		}
		var all []*armed
		for i, f := range faults {
			for r := 0; r < runs; r++ {
				a := &armed{f: f, j: js[i*runs+r]}
				if !f.comp {
					a.tr = f.proxy(su.S).Arm(f.name, f.match(a.j), su.kill)
				}
				all = append(all, a)
			}
		}
		su.approveAll(ctx, js)
		// Compensations: once provisioned, arm and rescind.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, a := range all {
			if !a.f.comp {
				continue
			}
			wg.Add(1)
			go func(a *armed) {
				defer wg.Done()
				wctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
				defer cancel()
				s := su.D.WaitSettled(wctx, a.j.ID, workflows.StageProvisioned)
				if s.Err != nil || s.Stage != workflows.StageProvisioned {
					su.t.Errorf("%s: joiner %s did not get provisioned (%s, %v)", a.f.name, a.j.ID, s.Stage, s.Err)
					return
				}
				tr := a.f.proxy(su.S).Arm(a.f.name, a.f.match(a.j), su.kill)
				mu.Lock()
				a.tr = tr
				mu.Unlock()
				if err := retry(wctx, func() error { return su.D.Rescind(wctx, a.j.ID) }); err != nil {
					su.t.Errorf("rescind %s: %v", a.j.ID, err)
				}
			}(a)
		}
		wg.Wait()
		// Every fault must have landed, or the row proves nothing.
		deadline := time.After(5 * time.Minute)
		for _, a := range all {
			if a.tr == nil {
				continue
			}
			select {
			case <-a.tr.Fired():
				su.t.Logf("%s: fired for joiner %s on %s %s", a.f.name, a.j.ID, a.tr.Request.Op, a.tr.Request.Target)
			case <-deadline:
				su.t.Errorf("%s: the fault never landed for joiner %s (no matching request)", a.f.name, a.j.ID)
			}
		}
		for i, f := range faults {
			group := js[i*runs : (i+1)*runs]
			want := map[string]Expect{}
			for _, j := range group {
				want[j.ID] = Live
				if f.comp {
					want[j.ID] = Gone
				}
			}
			su.settle(ctx, f.name, group, want)
		}
	}
}

// killInFlight starts n joiners with the connectors slowed down, kills -9
// the worker twice while their activities are in flight, audits, then
// rescinds half of them and kills the worker during their rollback.
func killInFlight(n int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := su.hireAndStart(ctx, "fleet", n)
		slow := func(d time.Duration) {
			for _, p := range []*Proxy{su.S.LDAP, su.S.Vault, su.S.HRIS} {
				p.SetLatency(d)
			}
		}
		killWhileBusy := func(what string) {
			// Wait until requests are in flight through the proxies, so the
			// kill lands mid-activity, not between activities.
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) && su.inFlight() < 3 {
				time.Sleep(50 * time.Millisecond)
			}
			at := su.inFlight()
			su.S.Worker.Kill()
			su.t.Logf("%s: kill -9 with %d requests in flight (ldap %d, vault %d, hris %d)", what, at,
				su.S.LDAP.Stats().InFlight, su.S.Vault.Stats().InFlight, su.S.HRIS.Stats().InFlight)
			require.Positive(su.t, at, "the kill must land while activities are in flight")
			time.Sleep(2 * time.Second)
			require.NoError(su.t, su.S.Worker.Start())
		}
		slow(150 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); su.approveAll(ctx, js) }()
		time.Sleep(3 * time.Second)
		killWhileBusy("provisioning")
		time.Sleep(4 * time.Second)
		killWhileBusy("provisioning")
		wg.Wait()
		slow(0)
		su.settle(ctx, fmt.Sprintf("kill -9 ×2 of the worker, %d joiners provisioning (+150 ms per request on LDAP, Vault, HRIS)", n), js, allLive(js))

		half := js[:n/2]
		slow(150 * time.Millisecond)
		for _, j := range half {
			require.NoError(su.t, su.D.Rescind(ctx, j.ID))
		}
		time.Sleep(time.Second)
		killWhileBusy("rollback")
		slow(0)
		want := allLive(js)
		for _, j := range half {
			want[j.ID] = Gone
		}
		su.settle(ctx, fmt.Sprintf("kill -9 of the worker during %d rollbacks (rescind), %d joiners held", len(half), n-len(half)), js, want)
	}
}

func (su *Suite) inFlight() int {
	return su.S.LDAP.Stats().InFlight + su.S.Vault.Stats().InFlight + su.S.HRIS.Stats().InFlight
}

func allLive(js []joiner) map[string]Expect {
	m := map[string]Expect{}
	for _, j := range js {
		m[j.ID] = Live
	}
	return m
}

// retry retries f while the worker restarts (a signal needs only
// Temporal, but a starting worker can make the first tries time out).
func retry(ctx context.Context, f func() error) error {
	var err error
	for {
		if err = f(); err == nil || !strings.Contains(err.Error(), "deadline") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

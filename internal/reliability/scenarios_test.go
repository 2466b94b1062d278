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

var (
	flagCrashRuns = flag.Int("crash-runs", 1, "joiners per crash-after-side-effect fault (make reliability: 3)")
	flagCrashOnly = flag.String("crash-only", "", "run only the crash-after faults whose name contains this")
)

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
	stepPassword = stepFault{"crash after LDAP Password Modify (credential: password set)", viaLDAP, ldapPasswordOf, false}
	stepSecret   = stepFault{"crash after Vault KV write (credential stored)", viaVault, vaultWriteOf, false}
	stepWrap     = stepFault{"crash after Vault response-wrapped read (credential wrapped)", viaVault, vaultWrapOf, false}
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
		if *flagCrashOnly != "" {
			var keep []stepFault
			for _, f := range faults {
				if strings.Contains(f.name, *flagCrashOnly) {
					keep = append(keep, f)
				}
			}
			faults = keep
		}
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
		fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		for _, a := range all {
			if a.tr == nil {
				continue
			}
			select {
			case <-a.tr.Fired():
				su.t.Logf("%s: fired for joiner %s on %s %s", a.f.name, a.j.ID, a.tr.Request.Op, a.tr.Request.Target)
			case <-fctx.Done():
				su.t.Errorf("%s: the fault never landed for joiner %s (no matching request)", a.f.name, a.j.ID)
			}
		}
		for _, f := range faults {
			f.proxy(su.S).Disarm() // none left armed for the next scenario
		}
		// Every kill may have landed in some joiner's wrapped-read window:
		// the reconciler sweeps all of them, as its schedule would, and the
		// crash point aimed at that window must leave exactly one orphan
		// per joiner.
		var kills []time.Time
		for _, a := range all {
			if a.tr != nil && a.tr.At != (time.Time{}) {
				kills = append(kills, a.tr.At)
			}
		}
		swept := su.sweepOrphans(ctx, "crash after each side effect", js, lastOf(kills...),
			workflows.StageProvisioned, workflows.StageRescinded)
		for i, f := range faults {
			group := js[i*runs : (i+1)*runs]
			if f.name == stepWrap.name {
				for _, j := range group {
					require.Equal(su.t, 1, swept[j.ID], "%s: one unrecorded wrapping token for joiner %s", f.name, j.ID)
				}
			}
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
// the worker kills times while their activities are in flight (the second
// and later kills land on the retries of what the first one lost), audits,
// then rescinds half of them (with rollbackKill, killing the worker during
// their rollback).
func killInFlight(n, kills int, rollbackKill bool) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := su.hireAndStart(ctx, "fleet", n)
		slow := func(d time.Duration) {
			for _, p := range []*Proxy{su.S.LDAP, su.S.Vault, su.S.HRIS} {
				p.SetLatency(d)
			}
		}
		var lastKill time.Time
		killWhileBusy := func(what string) {
			// Wait until requests are in flight through the proxies, so the
			// kill lands mid-activity, not between activities. After a kill
			// the lost activities come back only at their start-to-close
			// timeout (up to 2 min), hence the long wait.
			want := min(max(2, n/10), 10)
			deadline := time.Now().Add(4 * time.Minute)
			for time.Now().Before(deadline) && su.inFlight() < want {
				time.Sleep(20 * time.Millisecond)
			}
			l, v, h := su.S.LDAP.Stats().InFlight, su.S.Vault.Stats().InFlight, su.S.HRIS.Stats().InFlight
			su.S.Worker.Kill()
			lastKill = time.Now()
			su.t.Logf("%s: kill -9 with %d requests in flight (ldap %d, vault %d, hris %d)", what, l+v+h, l, v, h)
			require.Positive(su.t, l+v+h, "the kill must land while activities are in flight")
			time.Sleep(2 * time.Second)
			require.NoError(su.t, su.S.Worker.Start())
		}
		slow(150 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); su.approveAll(ctx, js) }()
		time.Sleep(2 * time.Second)
		for k := 0; k < kills; k++ {
			killWhileBusy(fmt.Sprintf("provisioning, kill %d", k+1))
		}
		wg.Wait()
		slow(0)
		provisioning := fmt.Sprintf("kill -9 ×%d of the worker, %d joiners provisioning (+150 ms per request on LDAP, Vault, HRIS)", kills, n)
		su.sweepOrphans(ctx, provisioning, js, lastKill, workflows.StageProvisioned)
		su.settle(ctx, provisioning, js, allLive(js))

		half := js[:n/2]
		slow(150 * time.Millisecond)
		for _, j := range half {
			require.NoError(su.t, su.D.Rescind(ctx, j.ID))
		}
		fault := fmt.Sprintf("rescind of %d provisioned joiners under load, %d held", len(half), n-len(half))
		if rollbackKill {
			killWhileBusy("rollback")
			fault = fmt.Sprintf("kill -9 of the worker during %d rollbacks (rescind), %d joiners held", len(half), n-len(half))
		}
		slow(0)
		want := allLive(js)
		for _, j := range half {
			want[j.ID] = Gone
		}
		if rollbackKill {
			su.sweepOrphans(ctx, fault, js, lastKill, workflows.StageProvisioned, workflows.StageRescinded)
		}
		su.settle(ctx, fault, js, want)
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

// temporalRestart kills -9 the private Temporal server while n joiners
// provision, starts it again on the same state after downFor, and expects
// every joiner to finish as if nothing happened.
func temporalRestart(n int, downFor time.Duration) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := su.hireAndStart(ctx, "tempo", n)
		for _, p := range []*Proxy{su.S.LDAP, su.S.Vault, su.S.HRIS} {
			p.SetLatency(100 * time.Millisecond)
		}
		su.approveAll(ctx, js)
		time.Sleep(2 * time.Second)
		at := su.inFlight()
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		require.NoError(su.t, su.S.RestartTemporal(rctx, downFor))
		su.t.Logf("Temporal killed -9 with %d connector requests in flight, down %s, restarted", at, downFor)
		for _, p := range []*Proxy{su.S.LDAP, su.S.Vault, su.S.HRIS} {
			p.SetLatency(0)
		}
		su.settle(ctx, fmt.Sprintf("Temporal server kill -9 and restart (down %s), %d joiners provisioning", downFor, n), js, allLive(js))
	}
}

// outage takes one server away (every connection refused and the open
// ones cut) for d while n joiners provision.
func outage(name string, via func(*Stack) *Proxy, d time.Duration, n int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := su.hireAndStart(ctx, "out"+name, n)
		su.approveAll(ctx, js)
		p := via(su.S)
		p.SetDown(true)
		time.Sleep(d)
		p.SetDown(false)
		su.t.Logf("%s outage: %d connections refused", name, p.Stats().Refused)
		su.settle(ctx, fmt.Sprintf("%s outage of %s, %d joiners provisioning", name, d, n), js, allLive(js))
	}
}

// duplicateStarts starts each of n joiners m times at once (duplicate and
// concurrent HR deliveries), sends every approval twice, and gives them
// all one name so their usernames race for the same candidates.
func duplicateStarts(n, m int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := make([]joiner, n)
		same := su.name("twin")
		for i := range js {
			id, err := su.D.Hire(ctx, "Rel", same, 1)
			require.NoError(su.t, err)
			js[i] = joiner{ID: id, Token: strings.ToLower(same)}
		}
		var mu sync.Mutex
		started := map[string]int{}
		var wg sync.WaitGroup
		for _, j := range js {
			for k := 0; k < m; k++ {
				wg.Add(1)
				go func(id string) {
					defer wg.Done()
					res, err := su.D.Start(ctx, id)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						// A duplicate that lost the race may be refused by the
						// eligibility check (already has a joiner): not a start.
						return
					}
					started[id+" "+string(res.Outcome)]++
				}(j.ID)
			}
		}
		wg.Wait()
		for _, j := range js {
			require.Equal(su.t, 1, started[j.ID+" started"], "joiner %s: exactly one of %d concurrent starts starts it (%v)", j.ID, m, started)
		}
		su.approveAll(ctx, js)
		// A second approval of each (sent if the joiner still waits, else
		// refused by the driver): nothing may be provisioned twice.
		for _, j := range js {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = su.D.Approve(actx, j.ID)
			cancel()
		}
		su.settle(ctx, fmt.Sprintf("%d concurrent starts of each of %d joiners with one name", m, n), js, allLive(js))
	}
}

// rescindRace rescinds joiners at the worst moments: in the same breath
// as the approval, and while provisioning is under way. Every one must
// end rolled back, with nothing left.
func rescindRace(n int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := su.hireAndStart(ctx, "race", n)
		for _, p := range []*Proxy{su.S.LDAP, su.S.Vault, su.S.HRIS} {
			p.SetLatency(50 * time.Millisecond)
		}
		defer func() {
			for _, p := range []*Proxy{su.S.LDAP, su.S.Vault, su.S.HRIS} {
				p.SetLatency(0)
			}
		}()
		var wg sync.WaitGroup
		for i, j := range js {
			wg.Add(1)
			go func(i int, id string) {
				defer wg.Done()
				actx, cancel := context.WithTimeout(ctx, 3*time.Minute)
				defer cancel()
				if err := su.D.Approve(actx, id); err != nil {
					su.t.Errorf("approve %s: %v", id, err)
					return
				}
				if i%2 == 1 {
					// Wait until it is creating things, then rescind.
					provisioning := map[workflows.Stage]bool{workflows.StageClaimingUsername: true, workflows.StageGrantingGroups: true,
						workflows.StageIssuingSecret: true, workflows.StageWritingBack: true}
					for actx.Err() == nil {
						if s := su.D.describe(actx, id); s.Err == nil && (provisioning[s.Stage] || s.Stage == workflows.StageProvisioned) {
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
				if err := su.D.Rescind(actx, id); err != nil {
					su.t.Errorf("rescind %s: %v", id, err)
				}
			}(i, j.ID)
		}
		wg.Wait()
		want := map[string]Expect{}
		for _, j := range js {
			want[j.ID] = Gone
		}
		su.settle(ctx, fmt.Sprintf("rescind racing the approval (%d) and provisioning (%d)", (n+1)/2, n/2), js, want)
	}
}

// cancelTimeBound cancels active time-bound service accounts the way an
// operator would (`temporal workflow cancel`): everything they were
// granted must be revoked before the workflow closes.
func cancelTimeBound(n int) func(su *Suite) {
	return func(su *Suite) {
		ctx := context.Background()
		js := make([]joiner, n)
		for i := range js {
			name := su.name("bot")
			key, err := su.D.StartNonHuman(ctx, name, 30)
			require.NoError(su.t, err)
			js[i] = joiner{ID: key, Token: name}
		}
		su.approveAll(ctx, js)
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		for _, j := range js {
			s := su.D.WaitSettled(wctx, j.ID, workflows.StageActive)
			require.Equal(su.t, workflows.StageActive, s.Stage, "joiner %s: %v", j.ID, s.Err)
		}
		for _, j := range js {
			require.NoError(su.t, su.D.Cancel(ctx, j.ID))
		}
		want := map[string]Expect{}
		for _, j := range js {
			want[j.ID] = Disabled
		}
		su.settleClosed(ctx, fmt.Sprintf("cancel of %d active time-bound service accounts", n), js, want)
	}
}

// settleClosed is settle for joiners that must close (no resting stage).
func (su *Suite) settleClosed(ctx context.Context, fault string, js []joiner, want map[string]Expect) Report {
	su.t.Helper()
	return su.settleIn(ctx, fault, js, want, nil)
}

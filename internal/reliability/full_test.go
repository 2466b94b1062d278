//go:build reliability

package reliability

import "time"

// scenarios is the full suite, `make reliability` (go test -tags
// reliability -joiners=200 -crash-runs=3): a crash right after every
// side effect of a joiner and of every compensation, kill -9 with 200
// joiners in flight, a Temporal server restart, 30 s outages of LDAP,
// Vault and the HRIS, duplicate and concurrent starts, rescind races and
// the cancel of active time-bound access.
func scenarios() []scenario {
	return []scenario{
		{"crash-after-side-effect", crashAfter(stepClaim, stepGroup, stepPassword, stepSecret, stepWrap, stepWrite,
			compWrite, compSecret, compGroup, compDelete)},
		{"kill-9-in-flight", func(su *Suite) { killInFlight(*flagJoiners, 2, true)(su) }},
		{"temporal-restart", temporalRestart(10, 5*time.Second)},
		{"ldap-outage", outage("LDAP", viaLDAP, 30*time.Second, 5)},
		{"vault-outage", outage("Vault", viaVault, 30*time.Second, 5)},
		{"hris-outage", outage("HRIS", viaHRIS, 30*time.Second, 5)},
		{"duplicate-starts", duplicateStarts(5, 8)},
		{"rescind-race", rescindRace(6)},
		{"cancel-time-bound", cancelTimeBound(3)},
	}
}

// parallelScenarios: one scenario at a time, so each row is its own fault.
const parallelScenarios = false

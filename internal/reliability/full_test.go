//go:build reliability

package reliability

import "time"

// scenarios is the full suite, `make reliability` (go test -tags
// reliability -joiners=200 -crash-runs=3): a crash right after every
// side effect of a joiner and of every compensation, kill -9 with 200
// joiners in flight, a Temporal server restart, 30 s outages of LDAP,
// Vault and the HRIS, duplicate and concurrent starts, rescind races, the
// cancel of active time-bound access and rehires (rehire_test.go).
func scenarios() []scenario {
	return []scenario{
		{"crash-after-side-effect", crashAfter(stepClaim, stepGroup, stepPassword, stepSecret, stepWrap, stepWrite,
			compWrite, compSecret, compGroup, compDelete)},
		{"kill-9-in-flight", func(su *Suite) { killInFlight(*flagJoiners, 2, true)(su) }},
		{"temporal-restart", temporalRestart(10, 5*time.Second)},
		{"ldap-outage", outage("LDAP", viaLDAP, 30*time.Second, 5)},
		{"vault-outage", outage("Vault", viaVault, 30*time.Second, 5)},
		{"hris-outage", outage("HRIS", viaHRIS, 30*time.Second, 5)},
		{"ldap-long-outage", longOutage(ldapLongOutage, 5)}, {"vault-long-outage", longOutage(vaultLongOutage, 5)}, // longoutage_test.go, ~40 min each
		{"duplicate-starts", duplicateStarts(5, 8)},
		{"rescind-race", rescindRace(6)},
		{"cancel-time-bound", cancelTimeBound(3)},
		// Last: they restart the worker on a policy with a rehire section.
		{"rehire-crash-take-over", func(su *Suite) { rehireCrashTakeOver(*flagCrashRuns)(su) }},
		{"rehire-rollback", func(su *Suite) { rehireRollback(*flagCrashRuns)(su) }},
		{"rehire-concurrent", func(su *Suite) { rehireConcurrent(*flagCrashRuns)(su) }},
	}
}

// parallelScenarios: one scenario at a time, so each row is its own fault.
const parallelScenarios = false

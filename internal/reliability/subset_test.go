//go:build !reliability

package reliability

// scenarios is the bounded subset that runs inside `make test`: a crash
// right after the claim, the credential's Vault write and the entry's
// deletion in a rollback, and kill -9 of the worker with -joiners (20) in
// flight, then a rescind of half of them; all at once on one private stack,
// so the kills of one scenario land on the other's joiners too. About three
// minutes, most of it Temporal waiting out the start-to-close timeouts of
// the activities the kills lost. `make reliability` runs everything.
func scenarios() []scenario {
	return []scenario{
		{"crash-after-side-effect", crashAfter(stepClaim, stepSecret, compDelete)},
		{"kill-9-in-flight", func(su *Suite) { killInFlight(*flagJoiners, 1, false)(su) }},
	}
}

// parallelScenarios: the subset's scenarios run at once (see TestReliability).
const parallelScenarios = true

//go:build !reliability

package reliability

// scenarios is the bounded subset that runs inside `make test`: a crash
// right after the claim, a group grant, the credential's Vault write and
// the entry's deletion in a rollback, and kill -9 of the worker with
// -joiners (20) in flight. `make reliability` runs everything.
func scenarios() []scenario {
	return []scenario{
		{"crash-after-side-effect", crashAfter(stepClaim, stepGroup, stepSecret, compDelete)},
		{"kill-9-in-flight", func(su *Suite) { killInFlight(*flagJoiners)(su) }},
	}
}

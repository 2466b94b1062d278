package workflows

import (
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options per step. Connectors already mark permanent failures as
// non-retryable; the type lists repeat the important ones so a reader sees,
// here, what will never be retried.
var (
	// HR reads: an HRIS outage should not fail a hire, so keep trying for an
	// hour (the 429 back-off happens inside the client).
	optsHRIS = workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{"HRISNotFound", "HRISUnauthorized", "HRISRejected"}},
	}
	// Planning is pure: a failure is a policy or input problem, retried
	// only to ride out a worker restart.
	optsPlan = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{"InvalidJoiner"}},
	}
	// Directory writes: LDAP busy/unavailable retries for half an hour; a
	// schema, credential or naming failure will not fix itself.
	optsDirectory = workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{"UsernameExhausted", "DirectoryInvalidCredentials", "DirectoryAccessDenied",
				"DirectorySchemaViolation", "InjectedFault"}},
	}
	// The credential step talks to Vault and LDAP; sealed Vault retries.
	optsCredential = workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{"VaultPermissionDenied", "VaultRejected", "InjectedFault"}},
	}
	// Write-back may sit behind a rate limit; give it two hours.
	optsHRISWrite = workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 2 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute,
			NonRetryableErrorTypes: []string{"HRISNotFound", "HRISUnauthorized", "HRISRejected", "InjectedFault"}},
	}
	// Notifications are best effort: a few tries, then the joiner moves on.
	optsNotify = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	}
	// Compensations are retried for about ten minutes; past that the joiner
	// reports CompensationFailed so a person looks, instead of hiding residue.
	// The audit export is a local file append: retried for about a minute
	// (a full disk, a lost mount), never when the activity refused the order.
	optsAudit = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: []string{"OrderRefused"}},
	}
	optsCompensation = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 15},
	}
)

func withOptions(ctx workflow.Context, o workflow.ActivityOptions) workflow.Context {
	return workflow.WithActivityOptions(ctx, o)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pick returns from's values for the keys of like ("" where absent).
func pick(from, like map[string]string) map[string]string {
	out := make(map[string]string, len(like))
	for k := range like {
		out[k] = from[k]
	}
	return out
}

package activities

// The wrapping-token sweep: the one part of the reconciler that runs in a
// separate process, the sweeper (JOINERY_WORKER_MODE=sweeper), with its own
// Vault identity.
//
// Why. IssueCredential and IssueWorkloadCredential make a response-wrapped
// Vault call and then record the wrapping token in the secret's handover
// ledger. A worker killed between Vault's answer and the ledger write
// leaves a live wrapping token nobody knows: it was never delivered, and
// the retry has already replaced what it holds (a new password, a
// destroyed SecretID), but it stays redeemable until its TTL (72 h). Vault
// told only the dead process its accessor, and the only way to find it
// again is to list every token accessor, which needs sudo on
// auth/token/accessors. The worker must not have that, so the sweeper
// does, and nothing else (secrets.SweeperPolicyHCL: list, look up and
// revoke token accessors; no secret, no token creation).
//
// How. The Reconciler workflow asks the sweeper for the live wrapping
// tokens created for Joinery's paths longer ago than MinAge
// (SweepListWrappingTokens), asks the worker which of them the handover
// ledgers record (Reconcile.ReconcileRecordedHandovers: the worker can read
// ledgers, the sweeper cannot), and has the sweeper revoke the rest
// (SweepRevokeWrappingTokens), which looks each accessor up again first.
//
// Why MinAge makes "not in the ledger" final. An issue attempt records its
// token within its start-to-close timeout (one minute, optsCredential), and
// its context ends at that deadline, so even a zombie attempt cannot record
// a token later. A token older than MinAge (at least MinSweepAge) that no
// ledger lists will never be listed: it is an orphan.
//
// Who can reach these activities. Anyone with Temporal access can schedule
// an activity on the sweeper's queue. They take no orders they cannot
// check: the caller must be a running Reconciler on Joinery's queue
// (confirmed with Temporal, like every order-checked activity), whose code
// is Joinery's; the revoke input is only accessors, each re-checked to be a
// live response-wrapping token for one of Joinery's paths and older than
// MinAge. The most a rogue caller can make the sweeper do is revoke an
// orphan early. Someone who can poll Joinery's queue can answer the
// worker's half falsely (README: restrict polls to the worker's identity).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/secrets"
)

// DefaultSweeperTaskQueue is the sweeper's task queue unless
// JOINERY_SWEEPER_TASK_QUEUE says otherwise.
const DefaultSweeperTaskQueue = "joinery-sweeper"

// MinSweepAge is the lowest MinAge the sweeper accepts: well past the
// credential steps' one-minute start-to-close timeout (so an attempt that
// could still record its token is over), with room for clock skew between
// Vault and the sweeper. DefaultSweepAge is the default.
const (
	MinSweepAge     = 3 * time.Minute
	DefaultSweepAge = 10 * time.Minute
)

// Sweep bounds: lookups per listing (every Vault token is looked up once),
// and tokens per report (the result is kept in workflow history).
const (
	sweepMaxLookups = 50000
	sweepMaxTokens  = 2000
)

// SweepVault is what the sweeper asks Vault; *secrets.Client implements it
// when logged in with the sweeper's identity.
type SweepVault interface {
	WrappingTokens(ctx context.Context, max int, fn func(secrets.WrapToken) error) (bool, error)
	LookupWrapToken(ctx context.Context, accessor string) (secrets.WrapToken, bool, error)
	RevokeAccessor(ctx context.Context, accessor string) error
}

// Sweep holds the sweeper's activities. Vault and Runs are required;
// JoinerQueue is Joinery's joiner queue (JOINERY_TASK_QUEUE), the only one
// whose Reconciler runs the sweeper serves.
type Sweep struct {
	Vault       SweepVault
	Runs        ContinuedRuns
	JoinerQueue string
	// MinAge: tokens younger than this are never revoked (default
	// DefaultSweepAge, never below MinSweepAge). An input can only raise it.
	MinAge time.Duration
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// WrapCandidate is a live wrapping token for one of Joinery's paths: its
// accessor and what it was created for, never the token.
type WrapCandidate struct {
	Accessor  string    `json:"accessor"`
	Kind      string    `json:"kind"`
	Key       string    `json:"key"`
	Path      string    `json:"path"`
	CreatedAt time.Time `json:"createdAt"`
}

// SweepListInput asks for the candidates.
type SweepListInput struct {
	// MinAge raises (never lowers) the sweeper's own minimum age.
	MinAge time.Duration `json:"minAge,omitempty"`
}

// SweepList is what the sweeper found.
type SweepList struct {
	// Old are the tokens older than the minimum age (at most
	// sweepMaxTokens); Young counts the others, left alone.
	Old   []WrapCandidate `json:"old,omitempty"`
	Young int             `json:"young"`
	// Looked counts Joinery's wrapping tokens seen (young and old); More:
	// the walk stopped at its bounds and the next run continues.
	Looked int  `json:"looked"`
	More   bool `json:"more,omitempty"`
}

// SweepRevokeInput names the accessors to revoke.
type SweepRevokeInput struct {
	Accessors []string      `json:"accessors"`
	MinAge    time.Duration `json:"minAge,omitempty"`
	DryRun    bool          `json:"dryRun,omitempty"`
}

// SweepRevoked says what became of each accessor.
type SweepRevoked struct {
	Revoked []WrapCandidate `json:"revoked,omitempty"`
	// Skipped: gone already, not one of Joinery's wrapping tokens, or too
	// young when looked up again (accessor and why).
	Skipped []string `json:"skipped,omitempty"`
	// Failed: the revoke failed (accessor and error); the next run retries.
	Failed []string `json:"failed,omitempty"`
}

func (s *Sweep) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Sweep) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sweep) minAge(in time.Duration) time.Duration {
	m := s.MinAge
	if m <= 0 {
		m = DefaultSweepAge
	}
	return max(m, MinSweepAge, in)
}

// admit checks the caller: a running Reconciler on Joinery's queue,
// confirmed with Temporal. Outside an activity it admits (trusted code).
func (s *Sweep) admit(ctx context.Context, step, what string) error {
	c := callerOf(ctx)
	if !c.inActivity {
		return nil
	}
	why := ""
	switch {
	case c.typ != ReconcilerWorkflowType:
		why = fmt.Sprintf("scheduled by a workflow of type %q, not %q", c.typ, ReconcilerWorkflowType)
	case s.Runs == nil || s.JoinerQueue == "":
		// A sweeper that cannot check its caller takes no orders.
		why = "the sweeper has no Temporal client or joiner queue to check its caller with"
	default:
		var err error
		if why, err = runVerdict(ctx, s.Runs, c.id, c.run, ReconcilerWorkflowType, s.JoinerQueue); err != nil {
			return err
		}
	}
	if why == "" {
		return nil
	}
	s.log().Warn("order refused", "event", "security", "activity", step, "workflowId", c.id,
		"workflowType", c.typ, "runId", c.run, "asked", what, "reason", why)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("order refused: %s: %s (asked: %s)", step, why, what), ErrTypeOrderRefused, nil)
}

// SweepListWrappingTokens lists the live response-wrapping tokens Vault
// holds for Joinery's paths (initial credentials, workload SecretIDs),
// those older than the minimum age in Old.
func (s *Sweep) SweepListWrappingTokens(ctx context.Context, in SweepListInput) (SweepList, error) {
	var out SweepList
	if in.MinAge < 0 {
		return out, temporal.NewNonRetryableApplicationError("minAge must not be negative", ErrTypeInvalidJoiner, nil)
	}
	if err := s.admit(ctx, "SweepListWrappingTokens", "list wrapping tokens"); err != nil {
		return out, err
	}
	cutoff := s.now().Add(-s.minAge(in.MinAge))
	// The walk calls back only for Joinery's tokens; a long stretch of
	// others (a Vault with many tokens) must not look like a hung activity.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				heartbeat(ctx, "walking token accessors")
			}
		}
	}()
	more, err := s.Vault.WrappingTokens(ctx, sweepMaxLookups, func(t secrets.WrapToken) error {
		out.Looked++
		if !t.CreatedAt.Before(cutoff) {
			out.Young++
			return nil
		}
		if len(out.Old) == sweepMaxTokens {
			out.More = true
			return errSweepFull
		}
		out.Old = append(out.Old, candidateOf(t))
		return nil
	})
	if err != nil && !errors.Is(err, errSweepFull) {
		return SweepList{}, classify(err)
	}
	out.More = out.More || more
	return out, nil
}

// errSweepFull stops the walk once a report is full.
var errSweepFull = errors.New("sweep report full")

// SweepRevokeWrappingTokens revokes the given accessors, each only after
// looking it up again: still a live wrapping token for one of Joinery's
// paths, and older than the minimum age. DryRun looks up and revokes
// nothing.
func (s *Sweep) SweepRevokeWrappingTokens(ctx context.Context, in SweepRevokeInput) (SweepRevoked, error) {
	var out SweepRevoked
	if in.MinAge < 0 || len(in.Accessors) > sweepMaxTokens {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("minAge must not be negative and at most %d accessors are revoked at once", sweepMaxTokens), ErrTypeInvalidJoiner, nil)
	}
	if err := s.admit(ctx, "SweepRevokeWrappingTokens", fmt.Sprintf("revoke %d wrapping tokens", len(in.Accessors))); err != nil {
		return out, err
	}
	cutoff := s.now().Add(-s.minAge(in.MinAge))
	for i, acc := range in.Accessors {
		heartbeat(ctx, i)
		t, ok, err := s.Vault.LookupWrapToken(ctx, acc)
		switch {
		case err != nil:
			out.Failed = append(out.Failed, fmt.Sprintf("%s: %s", acc, err.Error()))
			continue
		case !ok:
			out.Skipped = append(out.Skipped, acc+": gone, or not one of Joinery's wrapping tokens")
			continue
		case !t.CreatedAt.Before(cutoff):
			out.Skipped = append(out.Skipped, acc+": younger than the minimum age")
			continue
		}
		if in.DryRun {
			out.Revoked = append(out.Revoked, candidateOf(t))
			continue
		}
		if err := s.Vault.RevokeAccessor(ctx, acc); err != nil {
			out.Failed = append(out.Failed, fmt.Sprintf("%s: %s", acc, err.Error()))
			continue
		}
		s.log().Info("orphaned wrapping token revoked", "event", "reconcile", "accessor", acc,
			"kind", t.Kind, "key", t.Key, "createdAt", t.CreatedAt)
		out.Revoked = append(out.Revoked, candidateOf(t))
	}
	if len(out.Failed) > 0 && len(out.Failed) == len(in.Accessors) {
		// Nothing worked: let Temporal retry (Vault down), rather than
		// report every token failed.
		return out, temporal.NewApplicationError("no wrapping token could be revoked: "+out.Failed[0], "VaultUnavailable")
	}
	return out, nil
}

func candidateOf(t secrets.WrapToken) WrapCandidate {
	return WrapCandidate{Accessor: t.Accessor, Kind: t.Kind, Key: t.Key, Path: t.Path, CreatedAt: t.CreatedAt}
}

// RecordedHandoversInput names the candidates the worker looks up in the
// handover ledgers.
type RecordedHandoversInput struct {
	Tokens []WrapCandidate `json:"tokens"`
}

// RecordedHandovers lists the accessors a ledger records (in any state).
type RecordedHandovers struct {
	Recorded []string `json:"recorded,omitempty"`
}

// ReconcileRecordedHandovers reads the handover ledger of each candidate's
// secret (the initial credential's, or the workload role's) and returns the
// candidates' accessors the ledgers record. It runs on the worker, which
// can read ledgers; the sweeper cannot. A ledger that cannot be read fails
// the call: "not recorded" must never be a guess.
func (r *Reconcile) ReconcileRecordedHandovers(ctx context.Context, in RecordedHandoversInput) (RecordedHandovers, error) {
	var out RecordedHandovers
	if len(in.Tokens) > sweepMaxTokens {
		return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("at most %d tokens at once", sweepMaxTokens), ErrTypeInvalidJoiner, nil)
	}
	if err := r.admitReconciler(ctx, "ReconcileRecordedHandovers", fmt.Sprintf("read %d ledgers", len(in.Tokens))); err != nil {
		return out, err
	}
	known := map[string]map[string]bool{} // ledger path -> recorded accessors
	for i, t := range in.Tokens {
		heartbeat(ctx, i)
		ledger, err := r.ledgerOf(t)
		if err != nil {
			return RecordedHandovers{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidJoiner, nil)
		}
		accs, ok := known[ledger]
		if !ok {
			recs, err := r.Secrets.Handovers(ctx, ledger)
			if err != nil {
				return RecordedHandovers{}, classify(err)
			}
			accs = map[string]bool{}
			for _, rec := range recs {
				accs[rec.WrapAccessor] = true
			}
			known[ledger] = accs
		}
		if accs[t.Accessor] {
			out.Recorded = append(out.Recorded, t.Accessor)
		}
	}
	return out, nil
}

// ledgerOf names the handover ledger that would record t.
func (r *Reconcile) ledgerOf(t WrapCandidate) (string, error) {
	switch t.Kind {
	case secrets.WrapCredential:
		if err := checkKey(t.Key); err != nil {
			return "", err
		}
		return secrets.CredentialLedgerPath(r.Secrets.JoinerPath(t.Key, secrets.InitialCredentialName)), nil
	case secrets.WrapWorkload:
		if err := checkKey(t.Key); err != nil || !strings.HasPrefix(t.Key, secrets.WorkloadRolePrefix) || t.Key == secrets.WorkloadRolePrefix {
			return "", fmt.Errorf("workload role %q is not one of Joinery's", t.Key)
		}
		return r.Secrets.WorkloadLedgerPath(t.Key), nil
	}
	return "", fmt.Errorf("unknown wrapping token kind %q", t.Kind)
}

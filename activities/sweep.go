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
// How. Next to each handover ledger the worker keeps an index: the
// wrapping accessors it recorded, and nothing else (no token), written
// right after the ledger entry and before the token is delivered
// (connectors/secrets). So a delivered token is always indexed, and an
// unindexed one was never delivered. The sweeper may read the indexes (not
// the ledgers, which hold live tokens). The Reconciler workflow asks the
// sweeper for the unindexed live wrapping tokens created for Joinery's
// paths longer ago than MinAge (SweepListWrappingTokens), has the worker
// index those candidates' ledgers in case they predate the index
// (Reconcile.ReconcileIndexHandovers), and has the sweeper revoke the rest
// (SweepRevokeWrappingTokens). The revoke decides from Vault alone: it
// looks each accessor up again, takes the secret it was created for from
// Vault's own record of the token, reads that secret's index, and checks
// the age Vault measures. Nothing a workflow passes it can make it revoke a
// recorded handover.
//
// Why MinAge makes "not in the index" final. An issue attempt indexes its
// token within its start-to-close timeout (one minute, optsCredential), and
// its context ends at that deadline, so even a zombie attempt cannot index
// a token later. A token older than MinAge (at least MinSweepAge, measured
// by Vault: creation TTL minus TTL left) that no index lists never will be:
// it is an orphan, never delivered.
//
// Who can reach these activities. Anyone with Temporal access can schedule
// an activity on the sweeper's queue, or complete one of the reconciler's
// activities by ID with a result of their own. The sweeper serves only a
// running Reconciler on Joinery's queue (confirmed with Temporal, like
// every order-checked activity), and its revoke trusts nothing it is
// given but accessors, each judged again from Vault as above. The most a
// rogue can make it do is revoke an orphan early, or (answering the list
// in its place, or the backfill) skip orphans or revoke an unindexed token
// from before the index existed (for its wrap TTL after the upgrade: the
// policy's credential TTL). README: restrict polling and by-ID completion of Joinery's
// queues to Joinery's identities.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	HandoverIndex(ctx context.Context, t secrets.WrapToken) (map[string]bool, error)
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
	// AgeOf is how old a token is; default its Age as Vault measures it
	// (tests make tokens older).
	AgeOf func(secrets.WrapToken) time.Duration
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
	// Keys, when set, limits the listing to these joiners' tokens (joiner
	// keys; a workload's role is joinery-<key>).
	Keys []string `json:"keys,omitempty"`
}

// SweepList is what the sweeper found.
type SweepList struct {
	// Old are the unindexed tokens older than the minimum age (at most
	// sweepMaxTokens); Young counts the tokens younger than it, Recorded
	// the old ones an index lists, both left alone.
	Old      []WrapCandidate `json:"old,omitempty"`
	Young    int             `json:"young"`
	Recorded int             `json:"recorded"`
	// Failed: tokens whose index could not be read (left alone this run).
	Failed []string `json:"failed,omitempty"`
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

func (s *Sweep) age(t secrets.WrapToken) time.Duration {
	if s.AgeOf != nil {
		return s.AgeOf(t)
	}
	return t.Age
}

// indexed reports whether t's secret's index lists t, reading each index
// once per call (cache).
func (s *Sweep) indexed(ctx context.Context, cache map[string]map[string]bool, t secrets.WrapToken) (bool, error) {
	k := t.Kind + "\x00" + t.Key
	idx, ok := cache[k]
	if !ok {
		var err error
		if idx, err = s.Vault.HandoverIndex(ctx, t); err != nil {
			return false, err
		}
		cache[k] = idx
	}
	return idx[t.Accessor], nil
}

func (s *Sweep) minAge(in time.Duration) time.Duration {
	m := s.MinAge
	if m <= 0 {
		m = DefaultSweepAge
	}
	return max(m, MinSweepAge, in)
}

// admit checks the caller: a running Reconciler on Joinery's queue,
// confirmed with Temporal (admitReconcilerRun). Outside an activity it
// admits (trusted code).
func (s *Sweep) admit(ctx context.Context, step, what string) error {
	return admitReconcilerRun(ctx, s.log(), s.Runs, s.JoinerQueue, step, what)
}

// SweepListWrappingTokens lists the live response-wrapping tokens Vault
// holds for Joinery's paths (initial credentials, workload SecretIDs) that
// are older than the minimum age and that no handover index lists.
func (s *Sweep) SweepListWrappingTokens(ctx context.Context, in SweepListInput) (SweepList, error) {
	var out SweepList
	if in.MinAge < 0 {
		return out, temporal.NewNonRetryableApplicationError("minAge must not be negative", ErrTypeInvalidJoiner, nil)
	}
	if err := s.admit(ctx, "SweepListWrappingTokens", "list wrapping tokens"); err != nil {
		return out, err
	}
	minAge := s.minAge(in.MinAge)
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
	cache := map[string]map[string]bool{}
	// A slow or very large Vault: stop the walk at 70% of the attempt's
	// time and report what was found (More), rather than lose it all at
	// the deadline and start again from nothing.
	wctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)*7/10))
		defer cancel()
	}
	more, err := s.Vault.WrappingTokens(wctx, sweepMaxLookups, func(t secrets.WrapToken) error {
		if len(in.Keys) > 0 && !slices.Contains(in.Keys, t.Key) && !slices.Contains(in.Keys, strings.TrimPrefix(t.Key, "joinery-")) {
			return nil
		}
		out.Looked++
		if s.age(t) < minAge {
			out.Young++
			return nil
		}
		rec, err := s.indexed(ctx, cache, t)
		switch {
		case err != nil:
			// One unreadable index leaves its tokens alone; the rest go on.
			out.Failed = append(out.Failed, fmt.Sprintf("%s (%s %s): %s", t.Accessor, t.Kind, t.Key, err.Error()))
			return nil
		case rec:
			out.Recorded++
			return nil
		}
		if len(out.Old) == sweepMaxTokens {
			out.More = true
			return errSweepFull
		}
		out.Old = append(out.Old, candidateOf(t))
		return nil
	})
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		err, more = nil, true // out of time for this run: the next one goes on
	}
	if err != nil && !errors.Is(err, errSweepFull) {
		return SweepList{}, classify(err)
	}
	out.More = out.More || more
	return out, nil
}

// errSweepFull stops the walk once a report is full.
var errSweepFull = errors.New("sweep report full")

// SweepRevokeWrappingTokens revokes the given accessors, each only after
// judging it again from Vault: still a live wrapping token for one of
// Joinery's paths (as Vault recorded it at creation), older than the
// minimum age (as Vault measures it), and listed by no handover index.
// DryRun judges and revokes nothing.
func (s *Sweep) SweepRevokeWrappingTokens(ctx context.Context, in SweepRevokeInput) (SweepRevoked, error) {
	var out SweepRevoked
	if in.MinAge < 0 || len(in.Accessors) > sweepMaxTokens {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("minAge must not be negative and at most %d accessors are revoked at once", sweepMaxTokens), ErrTypeInvalidJoiner, nil)
	}
	if err := s.admit(ctx, "SweepRevokeWrappingTokens", fmt.Sprintf("revoke %d wrapping tokens", len(in.Accessors))); err != nil {
		return out, err
	}
	minAge := s.minAge(in.MinAge)
	cache := map[string]map[string]bool{}
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
		case s.age(t) < minAge:
			out.Skipped = append(out.Skipped, acc+": younger than the minimum age")
			continue
		}
		rec, err := s.indexed(ctx, cache, t)
		switch {
		case err != nil:
			out.Failed = append(out.Failed, fmt.Sprintf("%s: reading its handover index: %s", acc, err.Error()))
			continue
		case rec:
			out.Skipped = append(out.Skipped, acc+": recorded in its handover index (a handover, not an orphan)")
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

// IndexHandoversInput names the candidates whose ledgers the worker
// indexes.
type IndexHandoversInput struct {
	Tokens []WrapCandidate `json:"tokens"`
}

// IndexHandoversResult counts the ledgers indexed and names the ones that
// could not be.
type IndexHandoversResult struct {
	Ledgers int      `json:"ledgers"`
	Failed  []string `json:"failed,omitempty"`
	// Unindexed are the candidates' accessors whose ledger could not be
	// indexed: a pre-index handover among them would look unrecorded, so
	// they are not revoked this run.
	Unindexed []string `json:"unindexed,omitempty"`
}

// ReconcileIndexHandovers makes the handover index of each candidate's
// secret list every accessor its ledger records, for ledgers written before
// the index existed (secrets.IndexHandovers; idempotent). It runs on the
// worker, which may read ledgers; the sweeper may not. It decides nothing:
// the sweeper's revoke reads the indexes itself, so a forged answer here
// can at most leave a pre-index handover unindexed.
func (r *Reconcile) ReconcileIndexHandovers(ctx context.Context, in IndexHandoversInput) (IndexHandoversResult, error) {
	var out IndexHandoversResult
	if len(in.Tokens) > sweepMaxTokens {
		return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("at most %d tokens at once", sweepMaxTokens), ErrTypeInvalidJoiner, nil)
	}
	if err := r.admitReconciler(ctx, "ReconcileIndexHandovers", fmt.Sprintf("index %d ledgers", len(in.Tokens))); err != nil {
		return out, err
	}
	// Candidates by ledger, so a ledger that cannot be indexed holds back
	// every candidate of its secret.
	byLedger := map[string][]string{}
	var order []string
	for _, t := range in.Tokens {
		ledger, err := r.ledgerOf(t)
		if err != nil {
			out.Failed = append(out.Failed, fmt.Sprintf("%s: %s", t.Accessor, err.Error()))
			out.Unindexed = append(out.Unindexed, t.Accessor)
			continue
		}
		if _, ok := byLedger[ledger]; !ok {
			order = append(order, ledger)
		}
		byLedger[ledger] = append(byLedger[ledger], t.Accessor)
	}
	for i, ledger := range order {
		heartbeat(ctx, i)
		if err := r.Secrets.IndexHandovers(ctx, ledger); err != nil {
			out.Failed = append(out.Failed, fmt.Sprintf("%s: %s", ledger, err.Error()))
			out.Unindexed = append(out.Unindexed, byLedger[ledger]...)
			continue
		}
		out.Ledgers++
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

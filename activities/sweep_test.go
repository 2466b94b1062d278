package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
)

// fakeSweepVault holds tokens by accessor and records revokes.
type fakeSweepVault struct {
	tokens  map[string]secrets.WrapToken
	index   map[string]bool // accessors the handover indexes list
	revoked []string
	fail    error
}

func (f *fakeSweepVault) HandoverIndex(_ context.Context, t secrets.WrapToken) (map[string]bool, error) {
	if t.Key == "unreadable" {
		return nil, errors.New("index unreadable")
	}
	return f.index, nil
}

func (f *fakeSweepVault) WrappingTokens(_ context.Context, _ int, fn func(secrets.WrapToken) error) (bool, error) {
	for _, t := range f.tokens {
		if err := fn(t); err != nil {
			return false, err
		}
	}
	return false, nil
}

func (f *fakeSweepVault) LookupWrapToken(_ context.Context, acc string) (secrets.WrapToken, bool, error) {
	t, ok := f.tokens[acc]
	return t, ok, nil
}

func (f *fakeSweepVault) RevokeAccessor(_ context.Context, acc string) error {
	if f.fail != nil {
		return f.fail
	}
	f.revoked = append(f.revoked, acc)
	delete(f.tokens, acc)
	return nil
}

// However low the configured or requested minimum age, a token younger
// than MinSweepAge is neither listed as old nor revoked: its attempt may
// still be about to record it.
func TestSweepNeverGoesBelowTheFloor(t *testing.T) {
	v := &fakeSweepVault{tokens: map[string]secrets.WrapToken{
		"fresh": {Accessor: "fresh", Kind: secrets.WrapCredential, Key: "1", Age: time.Minute},
		"old":   {Accessor: "old", Kind: secrets.WrapCredential, Key: "2", Age: time.Hour},
	}}
	s := &Sweep{Vault: v, MinAge: time.Second}
	list, err := s.SweepListWrappingTokens(context.Background(), SweepListInput{})
	require.NoError(t, err)
	require.Equal(t, 1, list.Young)
	require.Len(t, list.Old, 1)
	require.Equal(t, "old", list.Old[0].Accessor)

	out, err := s.SweepRevokeWrappingTokens(context.Background(), SweepRevokeInput{Accessors: []string{"fresh", "old", "unknown"}})
	require.NoError(t, err)
	require.Equal(t, []string{"old"}, v.revoked, "only the old one")
	require.Len(t, out.Skipped, 2)

	// An input can raise the minimum age, never lower it.
	v.tokens["old2"] = secrets.WrapToken{Accessor: "old2", Kind: secrets.WrapCredential, Key: "3", Age: time.Hour}
	out, err = s.SweepRevokeWrappingTokens(context.Background(), SweepRevokeInput{Accessors: []string{"old2"}, MinAge: 2 * time.Hour})
	require.NoError(t, err)
	require.Empty(t, out.Revoked)
	require.Contains(t, v.tokens, "old2")
}

// A dry run looks up and revokes nothing; a Vault that refuses every
// revoke fails the call so Temporal retries it.
func TestSweepDryRunAndFailures(t *testing.T) {
	v := &fakeSweepVault{tokens: map[string]secrets.WrapToken{
		"old": {Accessor: "old", Kind: secrets.WrapCredential, Key: "2", Age: time.Hour},
	}}
	s := &Sweep{Vault: v}
	out, err := s.SweepRevokeWrappingTokens(context.Background(), SweepRevokeInput{Accessors: []string{"old"}, DryRun: true})
	require.NoError(t, err)
	require.Len(t, out.Revoked, 1)
	require.Empty(t, v.revoked)

	v.fail = errors.New("vault sealed")
	_, err = s.SweepRevokeWrappingTokens(context.Background(), SweepRevokeInput{Accessors: []string{"old"}})
	require.ErrorContains(t, err, "vault sealed")

	_, err = s.SweepRevokeWrappingTokens(context.Background(), SweepRevokeInput{Accessors: make([]string, sweepMaxTokens+1)})
	require.Error(t, err, "too many at once")
	_, err = s.SweepListWrappingTokens(context.Background(), SweepListInput{MinAge: -time.Second})
	require.Error(t, err)
}

// The revoke decides from Vault alone: an accessor its index lists is a
// handover, whatever the caller says; an unreadable index leaves its token
// alone and the others go on.
func TestSweepRevokeTrustsOnlyTheIndex(t *testing.T) {
	v := &fakeSweepVault{
		tokens: map[string]secrets.WrapToken{
			"handover": {Accessor: "handover", Kind: secrets.WrapCredential, Key: "7", Age: time.Hour},
			"orphan":   {Accessor: "orphan", Kind: secrets.WrapCredential, Key: "7", Age: time.Hour},
			"blind":    {Accessor: "blind", Kind: secrets.WrapCredential, Key: "unreadable", Age: time.Hour},
		},
		index: map[string]bool{"handover": true},
	}
	s := &Sweep{Vault: v}
	out, err := s.SweepRevokeWrappingTokens(context.Background(), SweepRevokeInput{Accessors: []string{"handover", "orphan", "blind"}})
	require.NoError(t, err)
	require.Equal(t, []string{"orphan"}, v.revoked)
	require.Len(t, out.Skipped, 1)
	require.Contains(t, out.Skipped[0], "recorded")
	require.Len(t, out.Failed, 1)

	list, err := s.SweepListWrappingTokens(context.Background(), SweepListInput{})
	require.NoError(t, err)
	require.Equal(t, 1, list.Recorded)
	require.Len(t, list.Failed, 1)
	require.Empty(t, list.Old, "the orphan is gone, the handover recorded, the blind one failed")
}

// The worker's half refuses candidates that name no Joinery ledger: a
// path-like key, a role outside joinery-nhi-, an unknown kind; each is
// reported and the others go on.
func TestIndexHandoversRefusesForeignNames(t *testing.T) {
	r := &Reconcile{Secrets: nil}
	for _, c := range []WrapCandidate{
		{Accessor: "a", Kind: secrets.WrapCredential, Key: "../x"},
		{Accessor: "a", Kind: secrets.WrapWorkload, Key: "joinery-worker"},
		{Accessor: "a", Kind: secrets.WrapWorkload, Key: "joinery-nhi-"},
		{Accessor: "a", Kind: "other", Key: "1"},
	} {
		out, err := r.ReconcileIndexHandovers(context.Background(), IndexHandoversInput{Tokens: []WrapCandidate{c}})
		require.NoError(t, err)
		require.Len(t, out.Failed, 1, "%+v", c)
		require.Equal(t, []string{"a"}, out.Unindexed, "held back from the revoke")
		require.Zero(t, out.Ledgers)
	}
}

type fakeRecorder struct {
	got map[string]int
	at  time.Time
}

func (f *fakeRecorder) RecordReconcile(findings map[string]int, at time.Time) error {
	f.got, f.at = findings, at
	return nil
}

// The reconciler's findings reach the recorder; without one nothing
// happens.
func TestReconcileRecordMetrics(t *testing.T) {
	f := &fakeRecorder{}
	r := &Reconcile{Metrics: f}
	require.NoError(t, r.ReconcileRecordMetrics(context.Background(), ReconcileMetricsInput{Findings: map[string]int{ItemEntry: 2}}))
	require.Equal(t, map[string]int{ItemEntry: 2}, f.got)
	require.False(t, f.at.IsZero())
	require.NoError(t, (&Reconcile{}).ReconcileRecordMetrics(context.Background(), ReconcileMetricsInput{}))
}

// slowSweepVault yields one token, then walks until the context ends, as a
// slow Vault with many tokens would.
type slowSweepVault struct{ fakeSweepVault }

func (f *slowSweepVault) WrappingTokens(ctx context.Context, _ int, fn func(secrets.WrapToken) error) (bool, error) {
	if err := fn(secrets.WrapToken{Accessor: "first", Kind: secrets.WrapCredential, Key: "9", Age: time.Hour}); err != nil {
		return false, err
	}
	<-ctx.Done()
	return false, ctx.Err()
}

// A walk that runs out of time keeps what it found and says there is more,
// before the attempt's own deadline.
func TestSweepListStopsBeforeTheDeadline(t *testing.T) {
	s := &Sweep{Vault: &slowSweepVault{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	list, err := s.SweepListWrappingTokens(ctx, SweepListInput{})
	require.NoError(t, err)
	require.True(t, list.More)
	require.Len(t, list.Old, 1)
	require.NoError(t, ctx.Err(), "stopped before the caller's deadline")
}

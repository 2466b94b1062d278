package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/pseudonym"
)

// upserts records every search attribute a joiner upserts, as text.
type upserts struct {
	mu   sync.Mutex
	seen []map[string]string
}

func (u *upserts) capture(f *fixture) {
	f.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		m := map[string]string{}
		for k, v := range sa.GetUntypedValues() {
			if l, ok := v.([]string); ok {
				m[k.GetName()] = strings.Join(l, ",")
			} else {
				m[k.GetName()] = fmt.Sprint(v)
			}
		}
		u.mu.Lock()
		u.seen = append(u.seen, m)
		u.mu.Unlock()
	}).Return(nil)
}

// last is each attribute's most recent value.
func (u *upserts) last() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]string{}
	for _, m := range u.seen {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// requireNoNames fails when any value ever upserted contains a name.
func (u *upserts) requireNoNames(t *testing.T, names ...string) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	require.NotEmpty(t, u.seen)
	for _, m := range u.seen {
		for k, v := range m {
			for _, n := range names {
				require.NotContains(t, strings.ToLower(v), strings.ToLower(n), "%s = %q", k, v)
			}
		}
	}
}

func pseudonymsMock(t *testing.T, f *fixture) *pseudonym.Keyer {
	k, err := pseudonym.New("workflow-test-pseudonym-key-0123456789")
	require.NoError(t, err)
	f.env.OnActivity(f.acts.SearchPseudonyms, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PseudonymsInput) (map[string]string, error) {
			out := map[string]string{}
			for _, u := range in.Usernames {
				out[strings.ToLower(u)] = k.Of(u)
			}
			return out, nil
		})
	return k
}

// A new joiner's search attributes carry pseudonyms for its manager, the
// people who may decide and who decided — never their usernames, nor the
// joiner's name — and the status records what it publishes.
func TestSearchAttributesCarryNoNames(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	k := pseudonymsMock(t, f)
	var u upserts
	u.capture(f)
	var waiting map[string]string
	f.env.RegisterDelayedCallback(func() {
		waiting = u.last()
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace", Comment: "ok"})
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)

	require.Equal(t, k.Of("ada.lovelace"), waiting[SAManager.GetName()])
	require.Equal(t, k.Of("ada.lovelace"), waiting[SADeciders.GetName()], "ada may decide: the inbox finds her pseudonym")
	end := u.last()
	require.Equal(t, k.Of("ada.lovelace"), end[SADecidedBy.GetName()])
	require.Equal(t, "", end[SADeciders.GetName()], "nobody may decide any more")
	require.Equal(t, "200", end[SAHRISID.GetName()])
	u.requireNoNames(t, "ada.lovelace", "lovelace", "grace.hopper", "hopper", "jose", "nunez", "José", "Ñúñez", "@")

	st := f.status()
	require.NotNil(t, st.SearchKeys)
	require.Equal(t, map[string]string{"ada.lovelace": k.Of("ada.lovelace"), "grace.hopper": k.Of("grace.hopper")}, st.SearchKeys.Pseudonyms)
}

// When the pseudonyms cannot be had, the joiner still runs and publishes
// no people at all: never the names. It says why in its events.
func TestNoPseudonymsMeansNoPeopleNotNames(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.OnActivity(f.acts.SearchPseudonyms, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("no key", activities.ErrTypeNoPseudonymKey, errors.New("no key")))
	var u upserts
	u.capture(f)
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	end := u.last()
	require.NotContains(t, end, SAManager.GetName())
	require.Equal(t, "", end[SADecidedBy.GetName()])
	u.requireNoNames(t, "ada", "lovelace", "grace", "hopper")
	found := false
	for _, e := range f.status().Events {
		found = found || strings.Contains(e.What, "no pseudonyms")
	}
	require.True(t, found, "the joiner says why the inbox cannot list it")
}

// A pseudonym activity that answered with something that is not a
// pseudonym (a username, say) is not believed.
func TestOnlyPseudonymShapedValuesArePublished(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.OnActivity(f.acts.SearchPseudonyms, mock.Anything, mock.Anything).Return(
		map[string]string{"ada.lovelace": "ada.lovelace", "grace.hopper": "grace.hopper"}, nil)
	var u upserts
	u.capture(f)
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	_, err := f.run()
	require.NoError(t, err)
	u.requireNoNames(t, "ada", "lovelace", "grace", "hopper")
}

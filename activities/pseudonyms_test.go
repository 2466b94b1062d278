package activities

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/pseudonym"
)

func testKeyer(t *testing.T) *pseudonym.Keyer {
	t.Helper()
	k, err := pseudonym.New("activities-test-pseudonym-key-0123456789")
	require.NoError(t, err)
	return k
}

// The joiner gets the pseudonyms of the people its own plan names, and
// nothing else: no names come back, only pseudonyms.
func TestSearchPseudonymsForTheJoinersOwnPeople(t *testing.T) {
	a, _, _, _ := orderFixture(t)
	a.Pseudonyms = testKeyer(t)
	var got map[string]string
	require.NoError(t, runAs(t, a, JoinerWorkflowType, JoinerWorkflowID("300"), a.SearchPseudonyms,
		PseudonymsInput{Key: "300", Usernames: []string{"Ada.Lovelace"}}, &got))
	require.Equal(t, map[string]string{"ada.lovelace": a.Pseudonyms.Of("ada.lovelace")}, got)
	require.True(t, pseudonym.Is(got["ada.lovelace"]))
}

// The adversary: a Temporal client running a workflow of its own on the
// task queue, wanting the pseudonym of a person of its choosing so it can
// find that person's joiners in the visibility store. It is refused as a
// security event, whether it is not a Joiner, is another joiner, or is the
// right joiner asking about someone its plan does not name.
func TestSearchPseudonymsIsNoOracle(t *testing.T) {
	a, _, _, logs := orderFixture(t)
	a.Pseudonyms = testKeyer(t)
	for _, c := range []struct{ name, typ, id, user string }{
		{"not a joiner", "Evil", JoinerWorkflowID("300"), "ada.lovelace"},
		{"another joiner", JoinerWorkflowType, JoinerWorkflowID("301"), "ada.lovelace"},
		{"not in the plan", JoinerWorkflowType, JoinerWorkflowID("300"), "alan.turing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got map[string]string
			err := runAs(t, a, c.typ, c.id, a.SearchPseudonyms, PseudonymsInput{Key: "300", Usernames: []string{c.user}}, &got)
			requireRefused(t, err)
			require.Empty(t, got)
		})
	}
	require.Contains(t, logs.String(), "event=security")
	require.Contains(t, logs.String(), "activity=search-pseudonyms")

	// A flood of names is refused before anything is computed.
	many := make([]string, maxPseudonyms+1)
	for i := range many {
		many[i] = "ada.lovelace"
	}
	err := runAs(t, a, JoinerWorkflowType, JoinerWorkflowID("300"), a.SearchPseudonyms, PseudonymsInput{Key: "300", Usernames: many}, nil)
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, ErrTypeInvalidJoiner, ae.Type())
}

// A worker without the key refuses (non-retryably) rather than hand out
// usernames or empty values.
func TestSearchPseudonymsWithoutKey(t *testing.T) {
	a, _, _, _ := orderFixture(t)
	err := runAs(t, a, JoinerWorkflowType, JoinerWorkflowID("300"), a.SearchPseudonyms,
		PseudonymsInput{Key: "300", Usernames: []string{"ada.lovelace"}}, nil)
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, ErrTypeNoPseudonymKey, ae.Type())
	require.True(t, ae.NonRetryable())
}

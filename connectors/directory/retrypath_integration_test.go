package directory

import (
	"context"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

// The retry path of a claim: the first attempt added the entry and the
// worker died before the add's own checks ran (or before Temporal recorded
// the result). Meanwhile an entry in the other container took the same
// username, or another entry appeared with the same employee id. The retry
// finds its own entry by the marker and must run the same checks a fresh
// add gets, not simply return the entry.

// addRival adds, as the rootdn, an entry for p under username in p's
// container, bypassing the claim and its checks (what a crashed claim of
// another joiner, or a hand-made entry, leaves behind).
func addRival(t *testing.T, c *Client, username string, p Person) string {
	t.Helper()
	d, err := c.cfg.Profile.Entry(username, p)
	require.NoError(t, err)
	dn := d.RDNs[0] + "," + c.parentDN(p.NonHuman)
	conn := rootConn(t)
	require.NoError(t, conn.Add(&ldap.AddRequest{DN: dn, Attributes: d.Attributes}))
	t.Cleanup(func() { _ = rootConn(t).Del(ldap.NewDelRequest(dn, nil)) })
	return dn
}

func TestIntegrationClaimRetryRunsTheCrossContainerCheck(t *testing.T) {
	c, ep := integrationClient(t)
	ctx := context.Background()
	run := tag(t)
	first, second := "retry-"+run, "retry2-"+run
	p := person(t, "Retry", "Person")

	a1, err := c.ClaimFirst(ctx, []string{first, second}, p)
	require.NoError(t, err)
	require.Equal(t, first, a1.Username)
	deleteLater(t, c, a1.DN)

	// A non-human entry with the same username appears in the other
	// container (its claim died before its own check).
	rival := addRival(t, c, first, robot(t, "Rival robot"))
	require.Equal(t, 2, holderCount(t, ep, first))

	// The retry: same owner and run. It must not return the entry whose
	// username is now held twice; it withdraws its own and claims the next.
	a2, err := c.ClaimFirst(ctx, []string{first, second}, p)
	require.NoError(t, err)
	deleteLater(t, c, a2.DN)
	require.Equal(t, second, a2.Username)
	require.False(t, a2.Existing)
	require.Nil(t, rawEntry(t, a1.DN), "the retry withdrew its own entry")
	require.NotNil(t, rawEntry(t, rival), "the rival is untouched")
	require.Equal(t, 1, holderCount(t, ep, first))
	require.Equal(t, 1, holderCount(t, ep, second))

	// A retry with nothing wrong still adopts its own entry.
	a3, err := c.ClaimFirst(ctx, []string{first, second}, p)
	require.NoError(t, err)
	require.Equal(t, Account{Username: second, DN: a2.DN, Existing: true}, a3)
}

func TestIntegrationClaimRetryRunsTheEmployeeIDCheck(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	run := tag(t)
	p := person(t, "Retry", "Twice")

	a1, err := c.ClaimFirst(ctx, []string{"retryid-" + run}, p)
	require.NoError(t, err)
	deleteLater(t, c, a1.DN)

	// Another entry for the same employee id appears (another joiner ID
	// for the same person, whose claim died after its add).
	other := p
	other.Owner, other.OwnerRun = "joiner-other-"+run, "run-other"
	otherDN := addRival(t, c, "retryid-other-"+run, other)

	// The retry withdraws its own entry (retryable: the next attempt
	// decides who the survivor is) ...
	_, err = c.ClaimFirst(ctx, []string{"retryid-" + run}, p)
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, TypeClaimConflict, ce.Type)
	require.True(t, ce.Retryable)
	require.Nil(t, rawEntry(t, a1.DN))
	require.NotNil(t, rawEntry(t, otherDN))

	// ... and that attempt reports the other joiner's entry.
	_, err = c.ClaimFirst(ctx, []string{"retryid-" + run}, p)
	found := existing(t, err, TypeAlreadyProvisioned)
	require.Equal(t, otherDN, found.DN)
}

package directory

// Rehire take-over and hand-back against the private slapd, whose generated
// access rules let the service account move a marker only on a disabled
// entry it created.

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

// leaver creates an entry as joiner generation 1 and disables it, as the
// leaver process leaves it; it returns the entry's DN and its marker.
func leaver(t *testing.T, c *Client) (string, Marker) {
	t.Helper()
	ctx := context.Background()
	p := person(t, "Re", "Hire")
	acct, err := c.Claim(ctx, "rehire-"+tag(t), p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	require.NoError(t, c.Disable(ctx, acct.DN, p.Owner))
	return acct.DN, Marker{Owner: p.Owner, Run: p.OwnerRun}
}

func TestIntegrationRehireTakeOverAndHandBack(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	dn, old := leaver(t, c)
	g2 := Marker{Owner: old.Owner + "~g2", Run: "run-g2-" + tag(t)}

	e, err := c.TakeOver(ctx, dn, old, g2)
	require.NoError(t, err)
	require.Equal(t, g2.Owner, e.Owner)
	require.Equal(t, g2.Run, e.OwnerRun)
	require.False(t, c.IsDisabled(e), "re-enabled")
	raw := rawEntry(t, dn)
	require.Equal(t, LockedPassword, raw.GetAttributeValue("userPassword"), "no usable password until the credential step")

	// A retry after a lost answer is a no-op success.
	e2, err := c.TakeOver(ctx, dn, old, g2)
	require.NoError(t, err)
	require.Equal(t, g2.Owner, e2.Owner)

	// The new generation now owns it: grants and disable go through with
	// its marker, and the old generation's marker is refused.
	group := c.GroupDN("all-staff")
	require.NoError(t, c.AddMember(ctx, group, dn, g2.Owner))
	requireType(t, c.AddMember(ctx, group, dn, old.Owner), TypeNotOwner, false)
	require.NoError(t, c.RemoveMember(ctx, group, dn, g2.Owner))

	// Rollback: disabled again, the old marker back, the entry kept.
	require.NoError(t, c.HandBack(ctx, dn, old, g2))
	require.NoError(t, c.HandBack(ctx, dn, old, g2), "idempotent")
	back := rawEntry(t, dn)
	require.NotNil(t, back, "never deleted")
	require.Equal(t, old.Owner, back.GetAttributeValue(JoinerAttribute))
	require.Equal(t, old.Run, back.GetAttributeValue(JoinerRunAttribute))
	require.Contains(t, back.GetAttributeValues("description"), DisabledMarker)
	require.Equal(t, LockedPassword, back.GetAttributeValue("userPassword"))
}

// Two generations race for one leaver's entry (two rehire starts that got
// past everything else): exactly one takes it over, the other is told it is
// not the owner, and the entry carries the winner's marker.
func TestIntegrationRehireConcurrentTakeOversOneWins(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	for round := range 10 {
		dn, old := leaver(t, c)
		contenders := []Marker{
			{Owner: old.Owner + "~g2", Run: fmt.Sprintf("run-a-%d", round)},
			{Owner: old.Owner + "~g2", Run: fmt.Sprintf("run-b-%d", round)},
			{Owner: old.Owner + "~g3", Run: fmt.Sprintf("run-c-%d", round)},
		}
		errs := make([]error, len(contenders))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, m := range contenders {
			wg.Go(func() {
				<-start
				_, errs[i] = c.TakeOver(ctx, dn, old, m)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "round %d: two take-overs won: %v", round, errs)
				winner = i
				continue
			}
			requireType(t, err, TypeNotOwner, false)
		}
		require.NotEqual(t, -1, winner, "round %d: nobody won: %v", round, errs)
		raw := rawEntry(t, dn)
		require.Equal(t, contenders[winner].Owner, raw.GetAttributeValue(JoinerAttribute))
		require.Equal(t, contenders[winner].Run, raw.GetAttributeValue(JoinerRunAttribute))
		require.NotContains(t, raw.GetAttributeValues("description"), DisabledMarker)
	}
}

// What a rehire may not take: an enabled entry (a live account), an entry
// of another owner, a person Joinery did not create. Each is refused and
// left byte-for-byte as it was; the directory itself refuses the marker
// swap on an enabled entry even when the connector is bypassed.
func TestIntegrationRehireRefusals(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()

	p := person(t, "Still", "Here")
	acct, err := c.Claim(ctx, "live-"+tag(t), p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	live := Marker{Owner: p.Owner, Run: p.OwnerRun}
	before := snapshot(t, acct.DN)
	_, err = c.TakeOver(ctx, acct.DN, live, Marker{Owner: p.Owner + "~g2", Run: "r"})
	requireType(t, err, TypeNotDisabled, false)
	require.Equal(t, before, snapshot(t, acct.DN))

	// Bypassing the connector: the service account's own modify of the
	// marker of an enabled entry is refused by the access rules (50).
	conn := workerConn(t)
	err = conn.Modify(&ldap.ModifyRequest{DN: acct.DN, Changes: []ldap.Change{
		change(ldap.DeleteAttribute, JoinerAttribute, p.Owner), change(ldap.AddAttribute, JoinerAttribute, "joiner-rogue"),
	}})
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights), "%v", err)
	require.Equal(t, before, snapshot(t, acct.DN))

	// A disabled entry of someone else's joiner: wrong "from".
	dn, old := leaver(t, c)
	gone := snapshot(t, dn)
	_, err = c.TakeOver(ctx, dn, Marker{Owner: "joiner-other"}, Marker{Owner: "joiner-other~g2"})
	requireType(t, err, TypeNotOwner, false)
	require.Equal(t, gone, snapshot(t, dn))
	// HandBack by a generation that does not own it changes nothing.
	requireType(t, c.HandBack(ctx, dn, Marker{Owner: "joiner-x"}, Marker{Owner: "joiner-x~g2"}), TypeNotOwner, false)
	require.Equal(t, gone, snapshot(t, dn))
	_ = old

	// Seed people (not created by the service account, no marker).
	for _, seed := range []string{"uid=ada.lovelace," + seedPeople, "uid=edsger.dijkstra," + seedPeople} {
		s := snapshot(t, seed)
		_, err := c.TakeOver(ctx, seed, Marker{Owner: "joiner-100"}, Marker{Owner: "joiner-100~g2"})
		requireType(t, err, TypeNotOwner, false)
		require.Equal(t, s, snapshot(t, seed))
	}

	// Bad input changes nothing and is said clearly.
	_, err = c.TakeOver(ctx, dn, old, old)
	requireType(t, err, TypeInvalidInput, false)
	_, err = c.TakeOver(ctx, "not a dn", old, Marker{Owner: "joiner-x~g2"})
	requireType(t, err, TypeInvalidInput, false)
	require.Equal(t, gone, snapshot(t, dn))
}

package directory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The reconciler's reads on the private slapd: every marked entry in both
// containers, in pages smaller than the directory; never a seed person
// without the marker; creation time, disabled state and memberships as the
// server has them.
func TestIntegrationListManaged(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	var dns []string
	var owners []string
	for i := range 3 {
		p := person(t, "List", "Managed"+string(rune('a'+i)))
		acct, err := c.Claim(ctx, "list-"+tag(t), p)
		require.NoError(t, err)
		deleteLater(t, c, acct.DN)
		dns, owners = append(dns, acct.DN), append(owners, p.Owner)
	}
	bot := robot(t, "List Bot")
	botAcct, err := c.Claim(ctx, "list-bot-"+tag(t), bot)
	require.NoError(t, err)
	deleteLater(t, c, botAcct.DN)
	require.NoError(t, c.Disable(ctx, dns[1], owners[1]))
	group := c.GroupDN("all-staff")
	require.NoError(t, c.AddMember(ctx, group, dns[0], owners[0]))
	t.Cleanup(func() { _ = c.RemoveMember(context.Background(), group, dns[0], owners[0]) })

	seen := map[string]ManagedEntry{}
	pages := 0
	require.NoError(t, c.ListManaged(ctx, 2, func(page []ManagedEntry) error {
		pages++
		require.LessOrEqual(t, len(page), 2, "pages are bounded")
		for _, e := range page {
			require.NotEmpty(t, e.Owner, "only marked entries are listed")
			seen[strings.ToLower(e.DN)] = e
		}
		return nil
	}))
	require.GreaterOrEqual(t, pages, 2)
	for i, dn := range dns {
		e, ok := seen[strings.ToLower(dn)]
		require.True(t, ok, "%s listed", dn)
		require.Equal(t, owners[i], e.Owner)
		require.NotEmpty(t, e.OwnerRun)
		require.WithinDuration(t, time.Now(), e.CreatedAt, 5*time.Minute, "createTimestamp read")
		require.Equal(t, i == 1, e.Disabled, dn)
		require.False(t, e.NonHuman)
	}
	require.True(t, seen[strings.ToLower(botAcct.DN)].NonHuman)
	_, ok := seen[strings.ToLower("uid=ada.lovelace,"+seedPeople)]
	require.False(t, ok, "a seed person without the marker is never listed")

	// fn's error stops the listing and comes back as it was.
	stop := errors.New("stop here")
	require.ErrorIs(t, c.ListManaged(ctx, 1, func([]ManagedEntry) error { return stop }), stop)

	m, err := c.ManagedByOwner(ctx, owners[0])
	require.NoError(t, err)
	require.Len(t, m, 1)
	require.Equal(t, dns[0], m[0].DN)
	groups, err := c.GroupsOf(ctx, dns[0])
	require.NoError(t, err)
	require.Len(t, groups, 1)
	require.True(t, sameDN(group, groups[0]), groups[0])
	require.Equal(t, "all-staff", c.GroupCN(groups[0]))
	none, err := c.GroupsOf(ctx, dns[2])
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = c.GroupsOf(ctx, "not a dn")
	requireType(t, err, TypeInvalidInput, false)
	_, err = c.ManagedByOwner(ctx, "")
	requireType(t, err, TypeInvalidInput, false)

	e, err := c.FindByOwner(ctx, owners[1])
	require.NoError(t, err)
	require.True(t, IsDisabled(e))
	e, err = c.FindByOwner(ctx, owners[0])
	require.NoError(t, err)
	require.False(t, IsDisabled(e))
}

package directory

import (
	"context"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

// The group-membership residual (README, "The group-membership residual"),
// pinned to its exact extent with the worker's real bind on the generated
// access rules: the bind itself may put any DN directly under the joiner
// containers into a catalogue group — someone Joinery did not create, or a
// DN that does not exist — and nothing else; Joinery's own connector refuses
// every one of those. If the directory rules ever close the gap, this test
// fails and the README's residual must be rewritten.
func TestIntegrationGroupMembershipResidual(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	w := workerConn(t)
	group := c.GroupDN("all-staff")
	ada := "uid=ada.lovelace," + seedPeople
	ghost := "uid=ghost-" + tag(t) + "," + seedPeople
	before := snapshot(t, group)
	members := rawEntry(t, group).GetAttributeValues("member")
	t.Cleanup(func() {
		for _, dn := range []string{ada, ghost} {
			m := ldap.NewModifyRequest(group, nil)
			m.Delete("member", []string{dn})
			_ = rootConn(t).Modify(m)
		}
		require.ElementsMatch(t, members, rawEntry(t, group).GetAttributeValues("member"), "the group's members are as they were")
	})
	wasMember := false
	for _, v := range rawEntry(t, group).GetAttributeValues("member") {
		wasMember = wasMember || sameDN(v, ada)
	}

	// Joinery's own path refuses: Ada carries no marker, the ghost no entry.
	requireType(t, c.AddMember(ctx, group, ada, "joiner-100"), TypeNotOwner, false)
	require.Error(t, c.AddMember(ctx, group, ghost, "joiner-100"))
	require.Equal(t, before, snapshot(t, group))

	// The raw bind: the residual. Within the catalogue groups and the two
	// containers, the directory does not know who created the member.
	if !wasMember {
		m := ldap.NewModifyRequest(group, nil)
		m.Add("member", []string{ada})
		require.NoError(t, w.Modify(m), "residual: the bind can add a person Joinery did not create")
	}
	m := ldap.NewModifyRequest(group, nil)
	m.Add("member", []string{ghost})
	require.NoError(t, w.Modify(m), "residual: the bind can add a DN that does not exist")

	// Its limits: nothing outside the two containers, nothing below them.
	for _, dn := range []string{"cn=admin," + seedBase, "cn=all-staff,ou=groups," + seedBase,
		"uid=x-" + tag(t) + ",uid=ada.lovelace," + seedPeople, "uid=x-" + tag(t) + ",ou=system," + seedBase} {
		m := ldap.NewModifyRequest(group, nil)
		m.Add("member", []string{dn})
		requireDenied(t, w.Modify(m), dn)
	}
}

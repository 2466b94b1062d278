package directory

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// PersonStatus is what the approval checks need to know about a person in
// the directory: whether the entry exists, whether it is disabled, and the
// employee number that links it to the HRIS.
type PersonStatus struct {
	DN         string
	Username   string
	EmployeeID string
	Disabled   bool
}

// LookupPerson finds a person's entry by username under the people OU, as
// the service account sees it. It returns nil (and no error) when there is
// none. The approval path uses it to check, live, that an approver is still
// an active person: a manager who left cannot approve.
func (c *Client) LookupPerson(ctx context.Context, username string) (*PersonStatus, error) {
	if strings.TrimSpace(username) == "" || strings.ContainsAny(username, "()*\\\x00,=+<>#;\"") {
		return nil, invalidInput("lookup", errors.New("not a username"))
	}
	var out *PersonStatus
	err := c.do(ctx, "lookup", func(conn *ldap.Conn) error {
		filter := "(" + c.cfg.Profile.UsernameAttribute() + "=" + ldap.EscapeFilter(username) + ")"
		entries, err := search(conn, c.cfg.PeopleDN, ldap.ScopeWholeSubtree, filter,
			c.cfg.Profile.UsernameAttribute(), c.cfg.Profile.EmployeeIDAttribute(), "description", "userAccountControl")
		if err != nil {
			return err
		}
		if len(entries) != 1 {
			return nil // none, or ambiguous: neither is an approver
		}
		e := entries[0]
		out = &PersonStatus{
			DN:         e.DN,
			Username:   e.GetEqualFoldAttributeValue(c.cfg.Profile.UsernameAttribute()),
			EmployeeID: e.GetEqualFoldAttributeValue(c.cfg.Profile.EmployeeIDAttribute()),
			Disabled:   entryDisabled(e),
		}
		return nil
	})
	return out, err
}

// entryDisabled recognises both ways an account is disabled: Joinery's own
// marker (OpenLDAP profiles) and AD's ACCOUNTDISABLE bit.
func entryDisabled(e *ldap.Entry) bool {
	for _, d := range e.GetEqualFoldAttributeValues("description") {
		if d == DisabledMarker {
			return true
		}
	}
	if uac := e.GetEqualFoldAttributeValue("userAccountControl"); uac != "" {
		if v, err := strconv.ParseUint(uac, 10, 32); err == nil && v&0x2 != 0 {
			return true
		}
	}
	return false
}

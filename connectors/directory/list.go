package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The reconciler's reads: every entry that carries Joinery's ownership
// marker, and the groups an entry is a member of. Both only read; changes
// still go through Disable and RemoveMember, which assert the marker.

// ManagedEntry is one entry carrying Joinery's ownership marker, as the
// reconciler sees it. It holds no password attribute.
type ManagedEntry struct {
	// DN, Username and EmployeeID of the entry.
	DN, Username, EmployeeID string
	// Owner and OwnerRun are its marker: the joiner's workflow ID and the
	// run that created it.
	Owner, OwnerRun string
	// Disabled: Joinery's disabled marker (OpenLDAP) or AD's ACCOUNTDISABLE.
	Disabled bool
	// CreatedAt is the server's createTimestamp (whenCreated in AD); zero
	// when the server did not return it.
	CreatedAt time.Time
	// NonHuman: the entry lives under ServiceAccountsDN.
	NonHuman bool
}

// DefaultListPageSize is the LDAP page size (RFC 2696) ListManaged asks for
// when pageSize is not positive: small enough for any server's size limit.
const DefaultListPageSize = 200

// ListManaged calls fn for each page of entries carrying Joinery's marker in
// the people and service-accounts containers, using the simple paged
// results control, so a directory of any size is read in bounded pages
// whatever the server's size limit. Entries without the marker are never
// returned: the reconciler cannot even see what Joinery did not create. fn
// returning an error stops the listing with that error.
func (c *Client) ListManaged(ctx context.Context, pageSize int, fn func([]ManagedEntry) error) error {
	if fn == nil {
		return invalidInput("list-managed", errors.New("no page function"))
	}
	if pageSize <= 0 {
		pageSize = DefaultListPageSize
	}
	attrs := []string{c.cfg.Profile.UsernameAttribute(), c.cfg.Profile.EmployeeIDAttribute(),
		c.cfg.Profile.OwnerAttribute(), c.cfg.Profile.OwnerRunAttribute(), "description", "userAccountControl",
		"createTimestamp", "whenCreated"}
	filter := "(" + c.cfg.Profile.OwnerAttribute() + "=*)"
	for _, base := range c.joinerContainers() {
		nonHuman := base == c.cfg.ServiceAccountsDN
		// One connection per container: a paging cookie belongs to the
		// connection that got it. The per-call timeout of do bounds the
		// whole container's listing; a directory too big for it needs a
		// larger JOINERY_LDAP_TIMEOUT.
		err := c.do(ctx, "list-managed", func(conn *ldap.Conn) error {
			paging := ldap.NewControlPaging(uint32(pageSize))
			for {
				req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
					filter, attrs, []ldap.Control{paging})
				res, err := conn.Search(req)
				if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
					return nil // no such container: nothing managed there
				}
				if err != nil {
					return fmt.Errorf("list managed entries under %s: %w", base, err)
				}
				page := make([]ManagedEntry, 0, len(res.Entries))
				for _, e := range res.Entries {
					page = append(page, c.managedEntry(e, nonHuman))
				}
				if len(page) > 0 {
					if err := fn(page); err != nil {
						return &stopListing{err}
					}
				}
				ctrl, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
				if ctrl == nil || len(ctrl.Cookie) == 0 {
					return nil
				}
				paging.SetCookie(ctrl.Cookie)
			}
		})
		var stop *stopListing
		if errors.As(err, &stop) {
			return stop.err
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stopListing carries fn's own error through do unclassified.
type stopListing struct{ err error }

func (s *stopListing) Error() string { return s.err.Error() }
func (s *stopListing) Unwrap() error { return s.err }

func (c *Client) managedEntry(e *ldap.Entry, nonHuman bool) ManagedEntry {
	m := ManagedEntry{
		DN:         e.DN,
		Username:   e.GetEqualFoldAttributeValue(c.cfg.Profile.UsernameAttribute()),
		EmployeeID: e.GetEqualFoldAttributeValue(c.cfg.Profile.EmployeeIDAttribute()),
		Owner:      e.GetEqualFoldAttributeValue(c.cfg.Profile.OwnerAttribute()),
		OwnerRun:   e.GetEqualFoldAttributeValue(c.cfg.Profile.OwnerRunAttribute()),
		Disabled:   entryDisabled(e),
		NonHuman:   nonHuman,
	}
	for _, attr := range []string{"createTimestamp", "whenCreated"} {
		if t, ok := generalizedTime(e.GetEqualFoldAttributeValue(attr)); ok {
			m.CreatedAt = t
			break
		}
	}
	return m
}

// generalizedTime parses an LDAP GeneralizedTime (RFC 4517 3.3.13) as
// servers return it for createTimestamp: 20261201103000Z, optionally with
// fractional seconds (AD: 20261201103000.0Z).
func generalizedTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{"20060102150405Z", "20060102150405.0Z", "20060102150405.000000Z", "20060102150405Z0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// GroupsOf returns the DNs of the groups under GroupsDN that list memberDN
// as a member (the server matches the DN, so case does not matter). The
// reconciler uses it to find a closed joiner's memberships without trusting
// any record of them: the directory is the truth about who is in a group.
func (c *Client) GroupsOf(ctx context.Context, memberDN string) ([]string, error) {
	if err := checkDN("member", memberDN); err != nil {
		return nil, invalidInput("groups-of", err)
	}
	var out []string
	err := c.do(ctx, "groups-of", func(conn *ldap.Conn) error {
		entries, err := search(conn, c.cfg.GroupsDN, ldap.ScopeWholeSubtree, "(member="+ldap.EscapeFilter(memberDN)+")", "1.1")
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			out = append(out, e.DN)
		}
		return nil
	})
	return out, err
}

// GroupCN returns the common name of a group DN under GroupsDN (the name
// AddMember / RemoveMember callers pass to GroupDN), or "" when groupDN is
// not directly under GroupsDN.
func (c *Client) GroupCN(groupDN string) string {
	dn, err := ldap.ParseDN(groupDN)
	if err != nil || len(dn.RDNs) < 2 || len(dn.RDNs[0].Attributes) != 1 {
		return ""
	}
	parent := &ldap.DN{RDNs: dn.RDNs[1:]}
	base, err := ldap.ParseDN(c.cfg.GroupsDN)
	if err != nil || !parent.EqualFold(base) {
		return ""
	}
	a := dn.RDNs[0].Attributes[0]
	if !equalFoldASCII(a.Type, "cn") {
		return ""
	}
	return a.Value
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// IsDisabled reports whether e (as FindByOwner returns it) is disabled:
// Joinery's disabled marker or AD's ACCOUNTDISABLE bit.
func IsDisabled(e *Entry) bool {
	if e == nil {
		return false
	}
	for k, vs := range e.Attributes {
		switch {
		case equalFoldASCII(k, "description"):
			for _, v := range vs {
				if v == DisabledMarker {
					return true
				}
			}
		case equalFoldASCII(k, "userAccountControl"):
			for _, v := range vs {
				if n, err := strconv.ParseUint(v, 10, 32); err == nil && n&0x2 != 0 {
					return true
				}
			}
		}
	}
	return false
}

// ManagedByOwner returns the entries carrying owner's marker in both joiner
// containers (normally one), with their creation time, so the reconciler
// can re-read what it is about to change and skip entries younger than its
// minimum age.
func (c *Client) ManagedByOwner(ctx context.Context, owner string) ([]ManagedEntry, error) {
	if err := checkOwner(owner); err != nil {
		return nil, invalidInput("managed-by-owner", err)
	}
	attrs := []string{c.cfg.Profile.UsernameAttribute(), c.cfg.Profile.EmployeeIDAttribute(),
		c.cfg.Profile.OwnerAttribute(), c.cfg.Profile.OwnerRunAttribute(), "description", "userAccountControl",
		"createTimestamp", "whenCreated"}
	var out []ManagedEntry
	err := c.do(ctx, "managed-by-owner", func(conn *ldap.Conn) error {
		for _, base := range c.joinerContainers() {
			entries, err := search(conn, base, ldap.ScopeWholeSubtree, c.ownerFilter(owner), attrs...)
			if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				continue
			}
			if err != nil {
				return err
			}
			for _, e := range entries {
				out = append(out, c.managedEntry(e, base == c.cfg.ServiceAccountsDN))
			}
		}
		return nil
	})
	return out, err
}

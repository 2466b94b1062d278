package directory

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/joinery/joinery/connectors"
)

// Ownership sentinels, wrapped by the *connectors.Error values that report
// them.
var (
	// ErrNotOwner reports an entry that does not carry the expected
	// joiner's ownership marker.
	ErrNotOwner = errors.New("entry not created by this joiner")
	// ErrAlreadyProvisioned reports that the person already has an entry
	// created by another joiner (or an earlier run of this one).
	ErrAlreadyProvisioned = errors.New("person already provisioned")
	// ErrNeedsOperator reports that the person already has an entry Joinery
	// did not create.
	ErrNeedsOperator = errors.New("person has an entry Joinery did not create")
)

// ControlTypeAssertion is the OID of the LDAP assertion control (RFC 4528).
// go-ldap does not implement it; assertionControl encodes it.
const ControlTypeAssertion = "1.3.6.1.1.12"

// ExistingEntryError describes the entry that stopped a claim: the
// employee id already has an entry. It is the cause of the
// TypeAlreadyProvisioned and TypeNeedsOperator errors; find it with
// errors.As.
type ExistingEntryError struct {
	// DN of the entry found.
	DN string
	// EmployeeID it holds.
	EmployeeID string
	// Owner and OwnerRun are its marker; both empty for NeedsOperator.
	Owner, OwnerRun string
	// Username it holds.
	Username string
}

func (e *ExistingEntryError) Error() string {
	if e.Owner == "" {
		return fmt.Sprintf("%s holds employee id %q and carries no Joinery marker", e.DN, e.EmployeeID)
	}
	return fmt.Sprintf("%s holds employee id %q and was created by joiner %q (run %q)", e.DN, e.EmployeeID, e.Owner, e.OwnerRun)
}

// existingEntry is the permanent error of a claim that found e.
func existingEntry(e *Entry) error {
	d := &ExistingEntryError{DN: e.DN, EmployeeID: e.EmployeeID, Owner: e.Owner, OwnerRun: e.OwnerRun, Username: e.Username}
	if e.Owner == "" {
		return connectors.Permanent(System, "claim", TypeNeedsOperator,
			"the person already has a directory entry that Joinery did not create; an operator must decide (nothing was changed)",
			errors.Join(ErrNeedsOperator, d))
	}
	return connectors.Permanent(System, "claim", TypeAlreadyProvisioned,
		"the person already has a directory entry from another joiner (nothing was changed)",
		errors.Join(ErrAlreadyProvisioned, d))
}

// notOwner is the permanent error of a change refused because dn is not
// owner's. found is the marker seen ("" when none or unknown).
func notOwner(op, dn, owner, found string) error {
	msg := fmt.Sprintf("%s does not carry joiner %q's marker", dn, owner)
	if found != "" {
		msg += fmt.Sprintf(" (it carries %q)", found)
	}
	return connectors.Permanent(System, op, TypeNotOwner, msg+"; Joinery only changes entries this joiner created", ErrNotOwner)
}

// ownerFilter matches entries carrying owner's marker.
func (c *Client) ownerFilter(owner string) string {
	return "(" + c.cfg.Profile.OwnerAttribute() + "=" + ldap.EscapeFilter(owner) + ")"
}

// assertionControl is the RFC 4528 control whose value is the BER encoding
// of filter. Critical: a server that ignored it would apply the change
// unchecked.
func assertionControl(filter string) (ldap.Control, error) {
	f, err := ldap.CompileFilter(filter)
	if err != nil {
		return nil, err
	}
	return ldap.NewControlString(ControlTypeAssertion, true, string(f.Bytes())), nil
}

// ownerControls returns the controls that make a modify or delete of an
// entry conditional on owner's marker, or nil when the profile's server
// cannot assert (the caller then checks with checkOwned first).
func (c *Client) ownerControls(owner string) ([]ldap.Control, error) {
	if !c.cfg.Profile.AssertsOwner() {
		return nil, nil
	}
	ctrl, err := assertionControl(c.ownerFilter(owner))
	if err != nil {
		return nil, err
	}
	return []ldap.Control{ctrl}, nil
}

// readEntry reads dn (every user attribute), or nil when it does not exist
// or is not visible to the bind DN.
func (c *Client) readEntry(conn *ldap.Conn, dn string) (*Entry, error) {
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"*"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dn, err)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return c.toEntry(res.Entries[0]), nil
}

// checkOwned reads dn and returns it when it carries owner's marker. A
// missing entry returns nil, nil (the caller decides whether that is
// success); one with another marker or none is TypeNotOwner.
func (c *Client) checkOwned(conn *ldap.Conn, op, dn, owner string) (*Entry, error) {
	e, err := c.readEntry(conn, dn)
	if err != nil || e == nil {
		return nil, err
	}
	if e.Owner != owner {
		return nil, notOwner(op, dn, owner, e.Owner)
	}
	return e, nil
}

// joinerContainers are where joiners' entries live: a person can hold an
// entry in either (a human later also given a service account, an entry
// moved by hand), so lookups by employee id or owner search both.
func (c *Client) joinerContainers() []string {
	return []string{c.cfg.PeopleDN, c.cfg.ServiceAccountsDN}
}

// findAll returns the entries matching filter in both joiner containers. A
// container that does not exist counts as empty.
func (c *Client) findAll(conn *ldap.Conn, filter string) ([]*Entry, error) {
	var out []*Entry
	for _, base := range c.joinerContainers() {
		entries, err := search(conn, base, ldap.ScopeWholeSubtree, filter, "*")
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			out = append(out, c.toEntry(e))
		}
	}
	return out, nil
}

// findOwned returns the entry carrying owner's marker, or nil. Two entries
// with one marker cannot come from one claim (it withdraws its duplicates),
// so they are reported for an operator to look at.
func (c *Client) findOwned(conn *ldap.Conn, owner string) (*Entry, error) {
	entries, err := c.findAll(conn, c.ownerFilter(owner))
	if err != nil {
		return nil, err
	}
	switch len(entries) {
	case 0:
		return nil, nil
	case 1:
		return entries[0], nil
	default:
		dns := make([]string, len(entries))
		for i, e := range entries {
			dns[i] = e.DN
		}
		return nil, connectors.Permanent(System, "find-owned", TypeDuplicateOwner,
			fmt.Sprintf("%d entries carry joiner %q's marker: %s", len(entries), owner, strings.Join(dns, "; ")), nil)
	}
}

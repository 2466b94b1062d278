package directory

// Rehire: a new generation of a joiner takes over the disabled entry an
// earlier generation created (and its leaver process disabled), instead of
// creating a second account for the same person. The hand-over is one LDAP
// modify that removes the old marker value and adds the new one, and removes
// the disabled marker, asserting (RFC 4528) the old marker and the disabled
// state: of two concurrent take-overs of one entry exactly one wins, the
// other finds the old value gone (assertion failed, or 16) and is told who
// holds the entry now. The slapd access rules let the service account
// replace a marker only on an entry it created that is disabled when the
// modify is judged (internal/stack). That binds callers of this code, not
// the service account's own credentials: slapd judges the filter on the
// entry before the change, and the account may write description on entries
// it created, so someone holding its password can first mark a live entry
// disabled and then move its marker. What keeps the worker itself from
// doing that is the order checks of the rehire activities (a run of
// Joinery's Joiner on Joinery's queue, an approved plan naming this DN).

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-ldap/ldap/v3"

	"github.com/joinery/joinery/connectors"
)

// TypeNotDisabled: a rehire found the earlier generation's entry enabled
// (it is someone's live account, or its leaver never ran). Permanent.
const TypeNotDisabled = "DirectoryNotDisabled"

// ErrNotDisabled is wrapped by TypeNotDisabled errors.
var ErrNotDisabled = errors.New("entry is not disabled")

// Marker is an ownership marker: the joiner (workflow ID) and run that own
// an entry.
type Marker struct {
	Owner string `json:"owner"`
	Run   string `json:"run,omitempty"`
}

func (m Marker) check(what string) error {
	if err := checkOwner(m.Owner); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(m.Run) > maxOwnerLen {
		return fmt.Errorf("%s: run is longer than %d", what, maxOwnerLen)
	}
	return nil
}

// IsDisabled reports whether e is disabled the way Disable leaves it.
func (c *Client) IsDisabled(e *Entry) bool {
	switch c.cfg.Profile.(type) {
	case ADProfile, *ADProfile:
		n, err := strconv.ParseUint(firstValue(e, "userAccountControl"), 10, 32)
		return err == nil && n&uacAccountDisable != 0
	default:
		return hasValue(e, "description", DisabledMarker)
	}
}

// enableChanges are the changes that undo DisableChanges on e, leaving the
// password locked (the rehire's credential step sets a new one).
func (c *Client) enableChanges(e *Entry) ([]ldap.Change, error) {
	switch p := c.cfg.Profile.(type) {
	case ADProfile, *ADProfile:
		old := firstValue(e, "userAccountControl")
		n, err := strconv.ParseUint(old, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("userAccountControl %q of %s is not a number", old, e.DN)
		}
		// Delete the value read, add the new one: a concurrent change fails (16).
		return []ldap.Change{
			change(ldap.DeleteAttribute, "userAccountControl", old),
			change(ldap.AddAttribute, "userAccountControl", strconv.FormatUint(n&^uacAccountDisable, 10)),
		}, nil
	case OpenLDAPProfile:
		ch := []ldap.Change{change(ldap.DeleteAttribute, "description", DisabledMarker)}
		if hasValue(e, "objectClass", "posixAccount") && hasValue(e, "loginShell", NoLoginShell) && !p.nonHumanDN(c, e.DN) {
			shell := p.LoginShell
			if shell == "" {
				shell = DefaultLoginShell
			}
			ch = append(ch, change(ldap.ReplaceAttribute, "loginShell", shell))
		}
		return ch, nil
	default:
		return nil, fmt.Errorf("profile %T cannot re-enable an entry", c.cfg.Profile)
	}
}

// nonHumanDN reports whether dn lies in the service-accounts container
// (whose entries keep NoLoginShell).
func (OpenLDAPProfile) nonHumanDN(c *Client, dn string) bool {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) < 2 {
		return false
	}
	parent := &ldap.DN{RDNs: parsed.RDNs[1:]}
	sa, err := ldap.ParseDN(c.cfg.ServiceAccountsDN)
	return err == nil && parent.EqualFold(sa)
}

// markerChanges move the marker of e from its current value to `to` by
// deleting the values read and adding the new ones: the delete fails (16)
// when another modify moved the marker first.
func (c *Client) markerChanges(e *Entry, to Marker) []ldap.Change {
	prof := c.cfg.Profile
	ch := []ldap.Change{
		change(ldap.DeleteAttribute, prof.OwnerAttribute(), e.Owner),
		change(ldap.AddAttribute, prof.OwnerAttribute(), to.Owner),
	}
	if e.OwnerRun != "" {
		ch = append(ch, change(ldap.DeleteAttribute, prof.OwnerRunAttribute(), e.OwnerRun))
	}
	if to.Run != "" {
		ch = append(ch, change(ldap.AddAttribute, prof.OwnerRunAttribute(), to.Run))
	}
	return ch
}

// disabledControls assert that the entry carries owner's marker and is
// disabled, where the profile's server supports the assertion control.
func (c *Client) disabledControls(owner string) ([]ldap.Control, error) {
	if !c.cfg.Profile.AssertsOwner() {
		return nil, nil
	}
	f := c.ownerFilter(owner)
	if _, ok := c.cfg.Profile.(OpenLDAPProfile); ok {
		f = "(&" + f + "(description=" + ldap.EscapeFilter(DisabledMarker) + "))"
	}
	ctrl, err := assertionControl(f)
	if err != nil {
		return nil, err
	}
	return []ldap.Control{ctrl}, nil
}

// TakeOver moves the entry dn from the earlier generation's marker `from`
// to the new generation's `to` and re-enables it, in one modify that
// asserts `from` and the disabled state. The password stays locked. It is
// idempotent: an entry already carrying `to` (a retry after a lost
// response) is returned as it is. An entry of another owner, or one taken
// over by a concurrent rehire, is TypeNotOwner; an enabled entry
// TypeNotDisabled; a missing one TypeNoSuchEntry. Nothing is changed then.
func (c *Client) TakeOver(ctx context.Context, dn string, from, to Marker) (*Entry, error) {
	if err := errors.Join(checkDN("entry", dn), from.check("from"), to.check("to")); err != nil {
		return nil, invalidInput("take-over", err)
	}
	if from.Owner == to.Owner {
		return nil, invalidInput("take-over", fmt.Errorf("the new generation %q must differ from the old", to.Owner))
	}
	ctrls, err := c.disabledControls(from.Owner)
	if err != nil {
		return nil, invalidInput("take-over", err)
	}
	var out *Entry
	err = c.do(ctx, "take-over", func(conn *ldap.Conn) error {
		e, err := c.readEntry(conn, dn)
		if err != nil {
			return err
		}
		if e == nil {
			return ldap.NewError(ldap.LDAPResultNoSuchObject, fmt.Errorf("%s is not visible to the bind DN", dn))
		}
		if e.Owner == to.Owner && e.OwnerRun == to.Run {
			out = e // our own earlier attempt
			return nil
		}
		if e.Owner != from.Owner || (from.Run != "" && e.OwnerRun != from.Run) {
			return notOwner("take-over", dn, from.Owner, e.Owner)
		}
		if !c.IsDisabled(e) {
			return connectors.Permanent(System, "take-over", TypeNotDisabled,
				fmt.Sprintf("%s (joiner %q) is not disabled: a rehire only takes over an account its leaver disabled (nothing was changed)", dn, e.Owner),
				ErrNotDisabled)
		}
		enable, err := c.enableChanges(e)
		if err != nil {
			return connectors.Permanent(System, "take-over", TypeInvalidInput, err.Error(), nil)
		}
		err = conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: append(c.markerChanges(e, to), enable...), Controls: ctrls})
		if ldap.IsErrorAnyOf(err, ldap.LDAPResultAssertionFailed, ldap.LDAPResultNoSuchAttribute, ldap.LDAPResultAttributeOrValueExists) {
			// Between the read and the modify someone else changed the
			// marker or the state: whoever it was won.
			now, _ := c.readEntry(conn, dn)
			if now != nil && now.Owner == to.Owner && now.OwnerRun == to.Run {
				out = now
				return nil
			}
			found := ""
			if now != nil {
				found = now.Owner
			}
			return notOwner("take-over", dn, from.Owner, found)
		}
		if err != nil {
			return fmt.Errorf("take over %s: %w", dn, err)
		}
		out, err = c.readEntry(conn, dn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HandBack undoes TakeOver: it disables the entry (asserting `to`, the new
// generation) and then gives the marker back to `from`. Two modifies,
// because the directory lets the marker move only on a disabled entry. It
// never deletes the entry. It is idempotent: an entry that already carries
// `from` is only made sure to be disabled, a missing one is nothing to undo.
// An entry of a third owner is TypeNotOwner and stays as it is.
func (c *Client) HandBack(ctx context.Context, dn string, from, to Marker) error {
	if err := errors.Join(checkDN("entry", dn), from.check("from"), to.check("to")); err != nil {
		return invalidInput("hand-back", err)
	}
	toCtrls, err := c.ownerControls(to.Owner)
	if err != nil {
		return invalidInput("hand-back", err)
	}
	swapCtrls, err := c.disabledControls(to.Owner)
	if err != nil {
		return invalidInput("hand-back", err)
	}
	return c.do(ctx, "hand-back", func(conn *ldap.Conn) error {
		e, err := c.readEntry(conn, dn)
		if err != nil || e == nil {
			return err // nothing there: nothing to hand back
		}
		switch e.Owner {
		case from.Owner:
			if c.IsDisabled(e) {
				return nil
			}
			// Handed back, but a retry died between our two steps in the
			// other order: never happens (we disable first); still, end
			// in the disabled state.
			ctrls, err := c.ownerControls(from.Owner)
			if err != nil {
				return err
			}
			return conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: c.cfg.Profile.DisableChanges(e), Controls: ctrls})
		case to.Owner:
		default:
			return notOwner("hand-back", dn, to.Owner, e.Owner)
		}
		if !c.IsDisabled(e) {
			if ch := c.cfg.Profile.DisableChanges(e); len(ch) > 0 {
				if err := conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: ch, Controls: toCtrls}); err != nil {
					if ldap.IsErrorWithCode(err, ldap.LDAPResultAssertionFailed) {
						return notOwner("hand-back", dn, to.Owner, "")
					}
					return fmt.Errorf("disable %s: %w", dn, err)
				}
			}
			if e, err = c.readEntry(conn, dn); err != nil || e == nil {
				return err
			}
		}
		err = conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: c.markerChanges(e, from), Controls: swapCtrls})
		if ldap.IsErrorAnyOf(err, ldap.LDAPResultAssertionFailed, ldap.LDAPResultNoSuchAttribute) {
			return notOwner("hand-back", dn, to.Owner, "")
		}
		if err != nil {
			return fmt.Errorf("hand back %s: %w", dn, err)
		}
		return nil
	})
}

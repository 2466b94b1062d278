package directory

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3"
)

// SetPassword sets the password of the entry dn, which must carry owner's
// marker (TypeNotOwner otherwise, and nothing is changed). OpenLDAP
// receives it through the Password Modify extended operation (the server
// hashes it); AD through unicodePwd over an encrypted connection. The
// password never appears in an error.
//
// Neither the extended operation nor AD takes an assertion, so the marker is
// read and checked first; the directory's access rules (the service account
// may only set passwords on entries it created) close the gap between the
// two steps. A missing entry is TypeNoSuchEntry.
func (c *Client) SetPassword(ctx context.Context, dn, owner, password string) error {
	if err := errors.Join(checkDN("entry", dn), checkOwner(owner)); err != nil {
		return invalidInput("set-password", err)
	}
	if password == "" {
		// An empty new password asks OpenLDAP to generate one, which would
		// be returned to nobody.
		return invalidInput("set-password", errors.New("password is empty"))
	}
	changes, err := c.cfg.Profile.PasswordChanges(password, c.secure)
	if err != nil {
		return invalidInput("set-password", err)
	}
	return c.do(ctx, "set-password", func(conn *ldap.Conn) error {
		e, err := c.checkOwned(conn, "set-password", dn, owner)
		if err != nil {
			return err
		}
		if e == nil {
			return ldap.NewError(ldap.LDAPResultNoSuchObject, fmt.Errorf("%s is not visible to the bind DN", dn))
		}
		if len(changes) == 0 {
			if _, err := conn.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", password)); err != nil {
				return fmt.Errorf("password modify of %s: %w", dn, err)
			}
			return nil
		}
		if err := conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: changes}); err != nil {
			return fmt.Errorf("set password of %s: %w", dn, err)
		}
		return nil
	})
}

// AddMember adds memberDN, which must carry owner's marker, to the group
// groupDN. Adding an existing member succeeds (20 attributeOrValueExists),
// so retries are harmless. The member's marker is read first (the
// assertion control applies to the group, not to the member); the
// directory only lets the service account change the groups the policy
// lists.
func (c *Client) AddMember(ctx context.Context, groupDN, memberDN, owner string) error {
	if err := errors.Join(checkDN("group", groupDN), checkDN("member", memberDN), checkOwner(owner)); err != nil {
		return invalidInput("add-member", err)
	}
	return c.do(ctx, "add-member", func(conn *ldap.Conn) error {
		e, err := c.checkOwned(conn, "add-member", memberDN, owner)
		if err != nil {
			return err
		}
		if e == nil {
			return ldap.NewError(ldap.LDAPResultNoSuchObject, fmt.Errorf("member %s is not visible to the bind DN", memberDN))
		}
		req := ldap.NewModifyRequest(groupDN, nil)
		req.Add("member", []string{memberDN})
		err = conn.Modify(req)
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
			return fmt.Errorf("add member %s to %s: %w", memberDN, groupDN, err)
		}
		return nil
	})
}

// RemoveMember removes memberDN from the group groupDN. Removing a
// non-member (16 noSuchAttribute) or from a missing group (32) succeeds:
// compensations must succeed when there is nothing left to undo. The member
// must carry owner's marker; a member entry that no longer exists (the
// joiner's entry was deleted first) leaves a dangling value that belongs to
// nobody, and removing it is allowed.
func (c *Client) RemoveMember(ctx context.Context, groupDN, memberDN, owner string) error {
	if err := errors.Join(checkDN("group", groupDN), checkDN("member", memberDN), checkOwner(owner)); err != nil {
		return invalidInput("remove-member", err)
	}
	return c.do(ctx, "remove-member", func(conn *ldap.Conn) error {
		if _, err := c.checkOwned(conn, "remove-member", memberDN, owner); err != nil {
			return err
		}
		req := ldap.NewModifyRequest(groupDN, nil)
		req.Delete("member", []string{memberDN})
		err := conn.Modify(req)
		if err != nil && !ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchAttribute, ldap.LDAPResultNoSuchObject) {
			return fmt.Errorf("remove member %s from %s: %w", memberDN, groupDN, err)
		}
		return nil
	})
}

// IsMember reports whether memberDN is a member of groupDN, using the
// server's DN matching (an LDAP compare), so case and spacing differences in
// the DN do not matter. A missing group is an error of type
// DirectoryNoSuchEntry.
func (c *Client) IsMember(ctx context.Context, groupDN, memberDN string) (bool, error) {
	if err := errors.Join(checkDN("group", groupDN), checkDN("member", memberDN)); err != nil {
		return false, invalidInput("is-member", err)
	}
	var member bool
	err := c.do(ctx, "is-member", func(conn *ldap.Conn) error {
		ok, err := conn.Compare(groupDN, "member", memberDN)
		switch {
		case err == nil:
			member = ok
			return nil
		case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute):
			return nil // a group without any member attribute
		default:
			return fmt.Errorf("compare member of %s: %w", groupDN, err)
		}
	})
	if err != nil {
		return false, err
	}
	return member, nil
}

// Disable makes the account dn, which must carry owner's marker, unable to
// log in, keeping the entry. It is idempotent. OpenLDAP (without ppolicy)
// gets LockedPassword, the DisabledMarker description and, for POSIX
// accounts, NoLoginShell; AD gets ACCOUNTDISABLE in userAccountControl. A
// missing entry is an error of type DirectoryNoSuchEntry; an entry of
// another joiner TypeNotOwner. With OpenLDAP the modify asserts the marker,
// so the check and the change are one operation.
func (c *Client) Disable(ctx context.Context, dn, owner string) error {
	if err := errors.Join(checkDN("entry", dn), checkOwner(owner)); err != nil {
		return invalidInput("disable", err)
	}
	ctrls, err := c.ownerControls(owner)
	if err != nil {
		return invalidInput("disable", err)
	}
	return c.do(ctx, "disable", func(conn *ldap.Conn) error {
		const attempts = 3
		for i := 1; ; i++ {
			e, err := c.checkOwned(conn, "disable", dn, owner)
			if err != nil {
				return err
			}
			if e == nil {
				return ldap.NewError(ldap.LDAPResultNoSuchObject, fmt.Errorf("%s is not visible to the bind DN", dn))
			}
			changes := c.cfg.Profile.DisableChanges(e)
			if len(changes) == 0 {
				return nil // already disabled
			}
			err = conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: changes, Controls: ctrls})
			if err == nil {
				return nil
			}
			if ldap.IsErrorWithCode(err, ldap.LDAPResultAssertionFailed) {
				return notOwner("disable", dn, owner, "")
			}
			// 16/20: a value read above changed before the modify (AD's
			// userAccountControl swap, a concurrent Disable adding the
			// marker). Read again and recompute.
			if i < attempts && ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchAttribute, ldap.LDAPResultAttributeOrValueExists) {
				continue
			}
			return fmt.Errorf("disable %s: %w", dn, err)
		}
	})
}

// Delete removes the entry dn, which must carry owner's marker. A missing
// entry (32) is success; an entry of another joiner (or none) is
// TypeNotOwner and stays. With OpenLDAP the delete asserts the marker
// (atomic); with AD the marker is read first.
func (c *Client) Delete(ctx context.Context, dn, owner string) error {
	if err := errors.Join(checkDN("entry", dn), checkOwner(owner)); err != nil {
		return invalidInput("delete", err)
	}
	ctrls, err := c.ownerControls(owner)
	if err != nil {
		return invalidInput("delete", err)
	}
	return c.do(ctx, "delete", func(conn *ldap.Conn) error {
		if ctrls == nil {
			e, err := c.checkOwned(conn, "delete", dn, owner)
			if err != nil || e == nil {
				return err // nil, nil: nothing there, nothing to undo
			}
		}
		err := conn.Del(ldap.NewDelRequest(dn, ctrls))
		switch {
		case err == nil, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
			return nil
		case ldap.IsErrorWithCode(err, ldap.LDAPResultAssertionFailed):
			found := ""
			if e, rerr := c.readEntry(conn, dn); rerr == nil && e != nil {
				found = e.Owner
			}
			return notOwner("delete", dn, owner, found)
		default:
			return fmt.Errorf("delete %s: %w", dn, err)
		}
	})
}

// checkDN rejects an empty or malformed DN before it reaches the server.
func checkDN(what, dn string) error {
	if dn == "" {
		return fmt.Errorf("%s DN is empty", what)
	}
	if _, err := ldap.ParseDN(dn); err != nil {
		return fmt.Errorf("%s DN %q: %v", what, dn, err)
	}
	return nil
}

package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/joinery/joinery/connectors"
)

// maxFilterNames caps the names in one Taken filter. Naming policies produce
// a handful of candidates (the brief plans for ~50); the cap only keeps a
// pathological batch from building a filter some server refuses, at the cost
// of one more request per chunk.
const maxFilterNames = 200

// Taken reports which usernames are already held by an entry anywhere under
// BaseDN, in one search round trip for the batch. Every input name is a key of
// the result. Taken is advisory (a name free now may be claimed a moment
// later): only Claim decides.
func (c *Client) Taken(ctx context.Context, usernames []string) (map[string]bool, error) {
	out := make(map[string]bool, len(usernames))
	for _, u := range usernames {
		out[u] = false
	}
	names := uniqueNames(usernames)
	if len(names) == 0 {
		return out, nil
	}
	err := c.do(ctx, "taken", func(conn *ldap.Conn) error { return c.taken(conn, names, out) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) taken(conn *ldap.Conn, names []string, out map[string]bool) error {
	attr := c.cfg.Profile.UsernameAttribute()
	for chunk := range slices.Chunk(names, maxFilterNames) {
		entries, err := search(conn, c.cfg.BaseDN, ldap.ScopeWholeSubtree, usernameFilter(attr, chunk), attr)
		if err != nil {
			return err
		}
		for _, e := range entries {
			for _, v := range e.GetEqualFoldAttributeValues(attr) {
				// The directory matches usernames case-insensitively
				// (caseIgnoreMatch), so "J.Smith" holds "j.smith" too.
				for _, name := range chunk {
					if strings.EqualFold(name, v) {
						out[name] = true
					}
				}
			}
		}
	}
	return nil
}

// usernameFilter builds (|(attr=a)(attr=b)...) with every value escaped.
func usernameFilter(attr string, names []string) string {
	var b strings.Builder
	if len(names) != 1 {
		b.WriteString("(|")
	}
	for _, n := range names {
		b.WriteString("(" + attr + "=" + ldap.EscapeFilter(n) + ")")
	}
	if len(names) != 1 {
		b.WriteString(")")
	}
	return b.String()
}

// uniqueNames drops empty and repeated names, keeping the first occurrence's
// order.
func uniqueNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Claim creates the entry of p under username if no entry holds it: the add
// itself is the claim, so the directory's uniqueness decides between racing
// joiners. When the entry exists and carries p's marker (Owner and
// OwnerRun) it is this claim's from an earlier attempt and is returned with
// Existing set; when it belongs to someone else the error wraps
// ErrUsernameTaken. Claim does not look for other entries of p's employee
// id; ClaimFirst and ClaimFirstWith do.
func (c *Client) Claim(ctx context.Context, username string, p Person) (Account, error) {
	draft, err := c.cfg.Profile.Entry(username, p)
	if err != nil {
		return Account{}, invalidInput("claim", err)
	}
	var acct Account
	err = c.do(ctx, "claim", func(conn *ldap.Conn) error {
		var err error
		acct, err = c.claim(conn, username, p, draft)
		return err
	})
	if err != nil {
		return Account{}, err
	}
	return acct, nil
}

// ClaimFirst claims the first free candidate for p. Before any change it
// looks for entries that already exist for p:
//
//   - an entry carrying p's marker and run (an earlier attempt of this claim,
//     possibly under a later candidate) is returned with Existing set, after
//     the same cross-container checks a fresh add gets (if another entry
//     holds its username it is withdrawn and the claim goes on as new);
//   - an entry carrying p's marker from another run, or another joiner's
//     marker, with p's employee id: TypeAlreadyProvisioned;
//   - an entry with p's employee id and no marker: TypeNeedsOperator.
//
// Both containers (people and service accounts) are searched. Names Taken
// reports as held are then skipped without an add; the others are claimed
// in order. When none is left the error has type UsernameExhausted and
// wraps ErrNoCandidate.
func (c *Client) ClaimFirst(ctx context.Context, candidates []string, p Person) (Account, error) {
	return c.ClaimFirstWith(ctx, candidates, func(string) Person { return p })
}

// ClaimFirstWith is ClaimFirst for entries whose attributes depend on the
// username being claimed (mail = <username>@domain, say): person builds the
// Person for each candidate. The employee ID, owner, run and NonHuman must
// not vary.
func (c *Client) ClaimFirstWith(ctx context.Context, candidates []string, person func(username string) Person) (Account, error) {
	names := uniqueNames(candidates)
	if len(names) == 0 {
		return Account{}, exhausted(candidates)
	}
	// Validate every candidate before the first write: bad input changes
	// nothing.
	drafts := make([]Draft, len(names))
	persons := make([]Person, len(names))
	for i, n := range names {
		persons[i] = person(n)
		p0, pi := persons[0], persons[i]
		if pi.EmployeeID != p0.EmployeeID || pi.NonHuman != p0.NonHuman || pi.Owner != p0.Owner || pi.OwnerRun != p0.OwnerRun {
			return Account{}, invalidInput("claim-first", errors.New("the person builder must keep employee ID, owner, run and kind fixed"))
		}
		d, err := c.cfg.Profile.Entry(n, persons[i])
		if err != nil {
			return Account{}, invalidInput("claim-first", err)
		}
		drafts[i] = d
	}
	p := persons[0]
	var acct Account
	err := c.do(ctx, "claim-first", func(conn *ldap.Conn) error {
		a, err := c.existingFor(conn, p)
		if err != nil {
			return err
		}
		if a != nil {
			// Our own entry from an earlier attempt (its answer was lost,
			// or the worker died before the claim was recorded). That
			// attempt may have died before its own checks, so the checks
			// an add gets run here too: no entry in another container
			// holds the username, and no other entry the employee id.
			own, err := c.confirm(conn, a.Username, a.DN, p.Owner, true)
			switch {
			case errors.Is(err, ErrUsernameTaken):
				// Withdrawn in favour of the rival: claim afresh below.
			case err != nil:
				return err
			default:
				if err := c.settlePerson(conn, own, p); err != nil {
					return err
				}
				acct = own
				return nil
			}
		}
		taken := make(map[string]bool, len(names))
		if err := c.taken(conn, names, taken); err != nil {
			return err
		}
		for i, n := range names {
			if taken[n] {
				continue
			}
			a, err := c.claim(conn, n, persons[i], drafts[i])
			if errors.Is(err, ErrUsernameTaken) {
				continue // lost the race for this one: the next candidate
			}
			if err != nil {
				return err
			}
			if err := c.settlePerson(conn, a, p); err != nil {
				return err
			}
			acct = a
			return nil
		}
		return exhausted(names)
	})
	if err != nil {
		return Account{}, err
	}
	return acct, nil
}

// existingFor settles what already exists for p before a claim changes
// anything: this claim's own entry (returned), another entry of p's
// employee id (an error), or nothing (nil, nil).
func (c *Client) existingFor(conn *ldap.Conn, p Person) (*Account, error) {
	own, err := c.findOwned(conn, p.Owner)
	if err != nil {
		return nil, err
	}
	if own != nil {
		if !sameRun(own, p) {
			// This joiner's marker from another run: a run that ended
			// (failed, terminated) and left its entry. Adopting it would
			// hand a live account to this run; an operator decides.
			return nil, existingEntry(own)
		}
		return &Account{Username: own.Username, DN: own.DN, Existing: true}, nil
	}
	same, err := c.findAll(conn, "("+c.cfg.Profile.EmployeeIDAttribute()+"="+ldap.EscapeFilter(p.EmployeeID)+")")
	if err != nil {
		return nil, err
	}
	if len(same) > 0 {
		// Prefer reporting an entry without a marker: that is the one an
		// operator must look at first.
		pick := same[0]
		for _, e := range same {
			if e.Owner == "" {
				pick = e
				break
			}
		}
		return nil, existingEntry(pick)
	}
	return nil, nil
}

// settlePerson checks, after the add, that no other entry holds p's
// employee id: two joiners for one person (under different joiner IDs)
// racing past existingFor would otherwise both create an account. As with
// usernames, the later add always sees the earlier entry and withdraws its
// own, so at most one account remains. Both may withdraw, so the error is
// retryable (TypeClaimConflict): the retry reports the survivor as
// AlreadyProvisioned, or claims afresh when there is none.
func (c *Client) settlePerson(conn *ldap.Conn, a Account, p Person) error {
	same, err := c.findAll(conn, "("+c.cfg.Profile.EmployeeIDAttribute()+"="+ldap.EscapeFilter(p.EmployeeID)+")")
	if err != nil {
		return err
	}
	for _, e := range same {
		if sameDN(e.DN, a.DN) {
			continue
		}
		ctrls, err := c.ownerControls(p.Owner)
		if err != nil {
			return err
		}
		if err := conn.Del(ldap.NewDelRequest(a.DN, ctrls)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return fmt.Errorf("withdraw %s after finding %s with the same employee id: %w", a.DN, e.DN, err)
		}
		return connectors.Transient(System, "claim", TypeClaimConflict,
			fmt.Sprintf("%s appeared for the same employee id while claiming; withdrew %s", e.DN, a.DN), nil)
	}
	return nil
}

// sameRun reports whether e was created by p's run (any run when p names
// none).
func sameRun(e *Entry, p Person) bool {
	return e.Owner == p.Owner && (p.OwnerRun == "" || e.OwnerRun == p.OwnerRun)
}

func exhausted(candidates []string) error {
	return connectors.Permanent(System, "claim-first", TypeUsernameExhausted,
		fmt.Sprintf("all %d username candidates are taken [%s]", len(candidates), strings.Join(candidates, ", ")),
		ErrNoCandidate)
}

// claim adds the draft under its first free RDN and settles collisions.
func (c *Client) claim(conn *ldap.Conn, username string, p Person, draft Draft) (Account, error) {
	parent := c.parentDN(p.NonHuman)
	var lastDN string
	for _, rdn := range draft.RDNs {
		dn := rdn + "," + parent
		err := conn.Add(&ldap.AddRequest{DN: dn, Attributes: draft.Attributes})
		if err == nil {
			return c.confirm(conn, username, dn, p.Owner, false)
		}
		// 68 is OpenLDAP's answer for a held DN and AD's for a held DN or
		// sAMAccountName; some AD versions answer 19 for the latter.
		if !ldap.IsErrorAnyOf(err, ldap.LDAPResultEntryAlreadyExists, ldap.LDAPResultConstraintViolation) {
			return Account{}, fmt.Errorf("add %s: %w", dn, err)
		}
		holders, herr := c.holders(conn, username)
		if herr != nil {
			return Account{}, herr
		}
		for _, h := range holders {
			if h.Owner != "" && sameRun(h, p) {
				// Our own entry from an earlier attempt whose answer was
				// lost: recognised by the marker, never by the employee
				// id, which another system's entry may hold too.
				return c.confirm(conn, username, h.DN, p.Owner, true)
			}
		}
		if len(holders) > 0 {
			return Account{}, usernameTaken(username, holders[0].DN)
		}
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return Account{}, fmt.Errorf("add %s: %w", dn, err) // a real constraint violation
		}
		// The DN is held by an entry that does not hold the username: the
		// RDN is not the username (AD's cn). Try the profile's next RDN.
		lastDN = dn
	}
	return Account{}, usernameTaken(username, lastDN)
}

// confirm checks, after an add or on finding our own entry, that no entry
// elsewhere under BaseDN holds the same username. LDAP only keeps DNs unique
// within a container, so a human and a non-human could both have added it.
// Every claimer that sees a rival withdraws; since the later of two adds
// always sees the earlier one, at most one claimer keeps the name.
func (c *Client) confirm(conn *ldap.Conn, username, dn, owner string, existing bool) (Account, error) {
	holders, err := c.holders(conn, username)
	if err != nil {
		return Account{}, err
	}
	acct := Account{Username: username, DN: dn, Existing: existing}
	for _, h := range holders {
		if sameDN(h.DN, dn) {
			if h.Username != "" {
				acct.Username = h.Username
			}
			continue
		}
		// The withdrawal asserts our marker too: dn is ours, and must
		// still be when it goes.
		ctrls, err := c.ownerControls(owner)
		if err != nil {
			return Account{}, err
		}
		if err := conn.Del(ldap.NewDelRequest(dn, ctrls)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return Account{}, fmt.Errorf("withdraw %s after finding %s with the same username: %w", dn, h.DN, err)
		}
		return Account{}, usernameTaken(username, h.DN)
	}
	return acct, nil
}

// holders returns the entries under BaseDN whose username attribute matches.
func (c *Client) holders(conn *ldap.Conn, username string) ([]*Entry, error) {
	p := c.cfg.Profile
	entries, err := search(conn, c.cfg.BaseDN, ldap.ScopeWholeSubtree,
		usernameFilter(p.UsernameAttribute(), []string{username}), p.UsernameAttribute(), p.EmployeeIDAttribute(),
		p.OwnerAttribute(), p.OwnerRunAttribute())
	if err != nil {
		return nil, err
	}
	out := make([]*Entry, len(entries))
	for i, e := range entries {
		out[i] = c.toEntry(e)
	}
	return out, nil
}

// FindByOwner returns the entry carrying owner's marker (a joiner's
// workflow ID) under PeopleDN or ServiceAccountsDN, or nil, nil when there
// is none. Compensations find what their joiner created with it.
func (c *Client) FindByOwner(ctx context.Context, owner string) (*Entry, error) {
	if err := checkOwner(owner); err != nil {
		return nil, invalidInput("find-owned", err)
	}
	var entry *Entry
	err := c.do(ctx, "find-owned", func(conn *ldap.Conn) error {
		var err error
		entry, err = c.findOwned(conn, owner)
		return err
	})
	if err != nil {
		return nil, err
	}
	return entry, nil
}

// FindByEmployeeID returns the entry holding employeeID under PeopleDN (or
// ServiceAccountsDN when nonHuman), or nil, nil when there is none. It says
// nothing about who created the entry (see Entry.Owner): never change an
// entry found this way without checking its owner.
func (c *Client) FindByEmployeeID(ctx context.Context, employeeID string, nonHuman bool) (*Entry, error) {
	if strings.TrimSpace(employeeID) == "" {
		return nil, invalidInput("find", errors.New("employee id is required"))
	}
	var entry *Entry
	err := c.do(ctx, "find", func(conn *ldap.Conn) error {
		var err error
		entry, err = c.findByEmployeeID(conn, employeeID, nonHuman)
		return err
	})
	if err != nil {
		return nil, err
	}
	return entry, nil
}

func (c *Client) findByEmployeeID(conn *ldap.Conn, employeeID string, nonHuman bool) (*Entry, error) {
	attr := c.cfg.Profile.EmployeeIDAttribute()
	entries, err := search(conn, c.parentDN(nonHuman), ldap.ScopeWholeSubtree,
		"("+attr+"="+ldap.EscapeFilter(employeeID)+")", "*")
	if err != nil {
		return nil, err
	}
	switch len(entries) {
	case 0:
		return nil, nil
	case 1:
		return c.toEntry(entries[0]), nil
	default:
		dns := make([]string, len(entries))
		for i, e := range entries {
			dns[i] = e.DN
		}
		// Guessing which one is the joiner's would hand out the wrong
		// account: an operator has to look.
		return nil, connectors.Permanent(System, "find", TypeDuplicateEmployeeID,
			fmt.Sprintf("%d entries hold employee id %q: %s", len(entries), employeeID, strings.Join(dns, "; ")), nil)
	}
}

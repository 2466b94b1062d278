package stack

import (
	"context"
	"strings"
)

// The approval inbox's own directory identity (issue 13, least privilege).
// The inbox faces browsers; whoever takes it over holds what it binds as.
// With the worker's account that would be the right to create entries, set
// passwords and change group memberships. With this one it is the right to
// find a person under ou=people by username and read the few attributes
// sign-in shows and checks (InboxReadAttributes), and nothing else: no
// write anywhere, no groups, no service accounts, no ownership marker, no
// password hash. People's own binds (the proof of their password) are
// unaffected: they run on connections of their own.
const (
	LDAPInboxDN       = "cn=joinery-inbox,ou=system," + LDAPBaseDN
	LDAPInboxPassword = "dev-joinery-inbox"
)

// InboxReadAttributes are what the inbox's sign-in search
// (directory.Client.Authenticate) filters on and reads: the username, the
// names it greets with, the mail address, and description, where Joinery's
// disabled marker lives. "entry" is slapd's pseudo-attribute for the entry
// itself, without which no attribute of it can be read.
var InboxReadAttributes = []string{"entry", "uid", "cn", "displayName", "mail", "description"}

// withInboxAccess adds the inbox's rules to the generated ones:
//
//   - every rule that lets signed-in users read ("users read") first refuses
//     the inbox ("dn.exact=<inbox> none"), so it reads nothing a person may
//     read unless a rule below says it may; a rule added later is covered
//     the same way without anyone remembering the inbox;
//   - a rule just before the one for entries directly under ou=people gives
//     it read on InboxReadAttributes there, keeping that rule's other
//     clauses (the worker's write on its own entries, people's read);
//   - it keeps reading the ou=people container entry, the base of its
//     search (slapd refuses a search whose base it may not read), and its
//     own entry under ou=system (the "self read" rule).
//
// No rule grants it more than read; the worker's clauses name only the
// worker's DN (slapdinbox_test.go checks both on a real slapd).
func withInboxAccess(rules []aclRule) []aclRule {
	inboxNone := `dn.exact="` + LDAPInboxDN + `" none`
	peopleBase := `dn.base="` + ldapPeopleDN + `"`
	peopleEntries := `dn.one="` + ldapPeopleDN + `"`
	out := make([]aclRule, 0, len(rules)+1)
	for _, r := range rules {
		if r.what == peopleEntries {
			// The same clauses as the rule it precedes, for the sign-in
			// attributes only, with the inbox's read before people's.
			read := aclRule{comment: "The approval inbox (" + LDAPInboxDN + "): finds people and reads what sign-in needs, nothing else.",
				what: peopleEntries + " attrs=" + strings.Join(InboxReadAttributes, ",")}
			for _, b := range r.by {
				if b == "users read" {
					read.by = append(read.by, `dn.exact="`+LDAPInboxDN+`" read`)
				}
				read.by = append(read.by, b)
			}
			out = append(out, read)
		}
		if r.what != peopleBase {
			var by []string
			for _, b := range r.by {
				if b == "users read" {
					by = append(by, inboxNone)
				}
				by = append(by, b)
			}
			r.by = by
		}
		out = append(out, r)
	}
	return out
}

// ensureLDAPAccounts is the slapd bootstrap: the worker's service account
// and the inbox's, each added to a database seeded before it existed.
func (c Config) ensureLDAPAccounts(ctx context.Context) error {
	if err := c.ensureLDAPServiceAccount(ctx); err != nil {
		return err
	}
	return c.ensureLDAPInboxAccount(ctx)
}

// ensureLDAPInboxAccount makes sure the inbox's account exists with its dev
// password. The seed has it; a dev directory seeded before it existed does
// not, and `devstack up` (like every Up) adds it here: one bind when it is
// there, otherwise an add and a Password Modify as the rootdn. An entry
// that exists with another password gets the dev password back, as the
// worker's does. ensureLDAPServiceAccount runs first and makes ou=system.
func (c Config) ensureLDAPInboxAccount(ctx context.Context) error {
	return c.ensureLDAPSystemAccount(ctx, LDAPInboxDN, "joinery-inbox", inboxAccountDescription, LDAPInboxPassword)
}

// inboxAccountDescription is the account's description, in the seed too.
const inboxAccountDescription = "Joinery approval inbox: finds people to sign them in; reads nothing else, writes nothing"

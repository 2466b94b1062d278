package directory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/joinery/joinery/connectors"
)

// ErrInvalidCredentials is what Authenticate returns for a wrong password,
// an unknown username and a disabled account alike, so that a caller (and so
// whoever guesses at the sign-in form) cannot tell which it was.
var ErrInvalidCredentials = errors.New("invalid credentials")

// MaxPasswordLen bounds the password Authenticate sends: nobody's password is
// this long, and a bound keeps a sign-in form from streaming megabytes into a
// bind request.
const MaxPasswordLen = 1024

// signInName is the shape of a username a person types to sign in: what the
// naming policy produces (letters, digits, . _ -), nothing a filter or DN
// could misread.
var signInName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Identity is a person the directory vouched for with their own password.
type Identity struct {
	// Username is the directory's spelling of the login name (not the
	// caller's: "Ada.Lovelace" signs in as "ada.lovelace").
	Username    string
	DN          string
	DisplayName string
	Mail        string
}

// Authenticate checks a person's own password against the directory and
// returns who they are.
//
// The entry is found with the service bind (uid under PeopleDN, exactly one),
// refused when Joinery disabled it (DisabledMarker, LockedPassword, AD's
// ACCOUNTDISABLE), and the password is then proven by a simple bind as that
// DN on a connection of its own, with the client's TLS settings. An empty
// password is refused before anything is sent: LDAP treats a simple bind
// with a DN and no password as an anonymous bind, which succeeds.
//
// A wrong password, an unknown username and a disabled account all return
// the same *connectors.Error wrapping ErrInvalidCredentials, with the same
// message. Directory faults (unreachable, busy, timeout) return the usual
// retryable *connectors.Error instead, so a caller can say "try again later"
// without counting a failed sign-in.
func (c *Client) Authenticate(ctx context.Context, username, password string) (Identity, error) {
	const op = "authenticate"
	if !signInName.MatchString(username) || password == "" || len(password) > MaxPasswordLen {
		return Identity{}, invalidCredentials()
	}
	var id Identity
	var found bool
	err := c.do(ctx, op, func(conn *ldap.Conn) error {
		attr := c.cfg.Profile.UsernameAttribute()
		entries, err := search(conn, c.cfg.PeopleDN, ldap.ScopeWholeSubtree,
			"("+attr+"="+ldap.EscapeFilter(username)+")",
			attr, "displayName", "cn", "mail", "description", "userPassword", "userAccountControl")
		if err != nil {
			return err
		}
		// Two entries with one login name would make "who signed in"
		// ambiguous; refusing is the only safe answer.
		if len(entries) != 1 || disabled(entries[0]) {
			return nil
		}
		e := entries[0]
		id = Identity{
			Username:    e.GetEqualFoldAttributeValue(attr),
			DN:          e.DN,
			DisplayName: firstText(e.GetAttributeValue("displayName"), e.GetAttributeValue("cn"), username),
			Mail:        e.GetAttributeValue("mail"),
		}
		found = id.Username != "" && id.DN != ""
		return nil
	})
	if err != nil {
		return Identity{}, err
	}
	dn := id.DN
	if !found {
		// Bind anyway, as a DN that cannot exist, so that an unknown or
		// disabled account costs the same round trips as a wrong password
		// and timing does not tell them apart.
		dn = c.cfg.Profile.UsernameAttribute() + "=" + ldap.EscapeDN(username) + "+employeeNumber=0," + c.cfg.PeopleDN
	}
	if err := c.bindAs(ctx, op, dn, password); err != nil {
		return Identity{}, err
	}
	if !found {
		return Identity{}, invalidCredentials()
	}
	return id, nil
}

// bindAs proves password for dn with a simple bind on a fresh connection, so
// that the service connection is never re-bound as a person.
func (c *Client) bindAs(ctx context.Context, op, dn, password string) error {
	if password == "" {
		return invalidCredentials() // never an anonymous bind (see Authenticate)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	conn, err := ldap.DialURL(c.cfg.URL, ldap.DialWithDialer(&net.Dialer{Deadline: deadline}), ldap.DialWithTLSConfig(c.tls))
	if err != nil {
		return classifyCtx(ctx, op, fmt.Errorf("connect to %s: %w", c.cfg.URL, err))
	}
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	conn.SetTimeout(time.Until(deadline))
	if c.cfg.StartTLS {
		if err := conn.StartTLS(c.tls); err != nil {
			return classifyCtx(ctx, op, fmt.Errorf("StartTLS with %s: %w", c.cfg.URL, err))
		}
	}
	err = conn.Bind(dn, password)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return classifyCtx(ctx, op, err)
	case ldap.IsErrorAnyOf(err, transientCodes...):
		return classify(op, err)
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
		ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax):
		// 53 is what a server says for an account it has locked; 32 and 34
		// for the impossible DN of an unknown user: all "invalid
		// credentials" to the caller.
		return invalidCredentials()
	default:
		var le *ldap.Error
		if errors.As(err, &le) {
			return invalidCredentials()
		}
		return classify(op, err) // not an LDAP result: a network fault
	}
}

// disabled says whether Joinery (or AD) disabled the entry.
func disabled(e *ldap.Entry) bool {
	for _, d := range e.GetAttributeValues("description") {
		if d == DisabledMarker {
			return true
		}
	}
	for _, p := range e.GetAttributeValues("userPassword") {
		if p == LockedPassword {
			return true
		}
	}
	if uac := e.GetAttributeValue("userAccountControl"); uac != "" {
		if n, err := strconv.ParseUint(uac, 10, 32); err == nil && n&uacAccountDisable != 0 {
			return true
		}
	}
	return false
}

// invalidCredentials is the one error every refused sign-in gets. It carries
// no cause: a cause would say which of the refusals it was.
func invalidCredentials() error {
	return connectors.Permanent(System, "authenticate", TypeInvalidCredentials, "invalid credentials", ErrInvalidCredentials)
}

func firstText(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

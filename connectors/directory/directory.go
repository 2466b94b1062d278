// Package directory is Joinery's LDAP connector: it claims usernames, creates
// accounts, manages group membership, sets the initial password and disables
// or deletes accounts in an OpenLDAP directory or in Active Directory.
//
// # The claim
//
// The product's core promise is that two people with the same name hired at
// the same moment never get the same username. The connector never reads and
// then writes: a claim IS the LDAP add, and the directory's own uniqueness of
// the entry's DN (uid=<name>,ou=people,... in OpenLDAP; sAMAccountName, which
// AD keeps unique domain-wide) decides who wins. The loser receives result 68
// (entryAlreadyExists) and, after checking that the entry is not its own from
// an earlier attempt, moves to its next candidate.
//
// LDAP only guarantees DN uniqueness inside one container, so a human under
// ou=people and a non-human under ou=service-accounts could both add the same
// uid. After every successful add the claimer searches the whole base for the
// username; a claimer that sees a rival deletes its own entry and reports the
// name as taken. Of two racing claimers the later add always sees the earlier
// one, so at most one keeps the name (both may back off; that only costs a
// candidate).
//
// # Ownership
//
// Joinery only changes what it created. Every entry a claim adds carries an
// ownership marker: the joiner's workflow ID (and the run that added it) in
// joineryJoiner / joineryRun of the auxiliary class joineryManaged
// (testdata/ldap/joinery.schema), or in two extension attributes with AD.
// Idempotency rests on that marker, not on the employee id: an entry holding
// this joiner's marker and run is the result of an earlier attempt of this
// claim and is returned with Account.Existing set. Any other entry for the
// same employee id, in the people or the service-accounts container, stops
// the claim before any change: with another marker (or an earlier run of
// this joiner) it is TypeAlreadyProvisioned, without a marker
// TypeNeedsOperator. Both wrap an *ExistingEntryError naming the entry.
//
// SetPassword, AddMember, RemoveMember, Disable and Delete take the expected
// owner and refuse (TypeNotOwner) an entry that does not carry it. With
// OpenLDAP the check travels with the modify or delete as an RFC 4528
// assertion, so it is atomic; the Password Modify extended operation and
// AD do not support assertions, so there the marker is read and checked
// first. The directory's access rules are the second line: the service
// account may only set passwords on, disable and delete entries it created
// (see internal/stack's slapd.conf and README, "Directory service account").
//
// # Active Directory
//
// [ADProfile] maps joiners to AD's user class. Its RDN is cn=<display name>
// (AD's convention); claim uniqueness is on sAMAccountName, which AD rejects
// with 68 (or 19 on some versions) when another object holds it. Because two
// people can share a display name, a DN collision whose holder has another
// sAMAccountName falls back to cn=<display name> (<username>). sAMAccountName
// is limited to 20 characters: longer candidates are rejected with a clear
// error (the naming policy is expected to cap them). AD only accepts a
// password (unicodePwd, a quoted UTF-16LE string) over an encrypted
// connection, so SetPassword with the AD profile requires ldaps:// or
// StartTLS. The AD profile is tested at the mapping level only: no AD server
// runs in the test environment.
//
// # Errors
//
// Every error a Client method returns is a *connectors.Error (see the Type*
// constants):
// busy, unavailable, network failures and timeouts are retryable; everything
// else is permanent. Error messages carry DNs, result codes and the server's
// diagnostic message, never a password.
package directory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// System is the connectors.Error System of every error this package returns.
const System = "ldap"

// DefaultTimeout bounds one Client call (dial, bind and every request) when
// Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Sentinel errors, wrapped by the *connectors.Error values that report them so
// that callers can test with errors.Is.
var (
	// ErrUsernameTaken reports that another joiner's entry holds the username.
	ErrUsernameTaken = errors.New("username taken")
	// ErrNoCandidate reports that every candidate username is taken.
	ErrNoCandidate = errors.New("no free username candidate")
	// ErrInvalidUsername reports a username the profile cannot store (empty,
	// too long for sAMAccountName, forbidden characters).
	ErrInvalidUsername = errors.New("invalid username")
	// ErrInsecureTransport reports an operation the directory only accepts
	// over TLS (AD passwords).
	ErrInsecureTransport = errors.New("operation requires an encrypted connection")
)

// Config says how to reach and bind to the directory and where entries live.
type Config struct {
	// URL is ldap://host:port or ldaps://host:port.
	URL string
	// BindDN and BindPassword are the service credentials of Joinery.
	BindDN, BindPassword string
	// BaseDN is the directory suffix, e.g. dc=joinery,dc=test. Username
	// uniqueness is checked across the whole subtree.
	BaseDN string
	// PeopleDN holds human joiners; default "ou=people,"+BaseDN.
	PeopleDN string
	// ServiceAccountsDN holds non-human joiners; default
	// "ou=service-accounts,"+BaseDN.
	ServiceAccountsDN string
	// GroupsDN holds groups; default "ou=groups,"+BaseDN.
	GroupsDN string
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool
	// InsecureSkipVerify disables server certificate verification (tests only).
	InsecureSkipVerify bool
	// CACertFile is a PEM bundle trusted in addition to the system roots.
	CACertFile string
	// Timeout bounds each Client call; default DefaultTimeout.
	Timeout time.Duration
	// Profile maps joiners to entries; default OpenLDAPProfile{}.
	Profile Profile
}

// Person is what the directory needs to know about a joiner.
type Person struct {
	// EmployeeID is the HR id, stored in employeeNumber (employeeID in AD).
	// It is required: a second entry for the same id stops the claim.
	EmployeeID string
	// Owner is the ID of the joiner (its workflow ID, e.g. "joiner-200")
	// creating the entry: the ownership marker, required.
	Owner string
	// OwnerRun is the run of that joiner (its run ID). A claim only adopts
	// an entry with the same Owner and OwnerRun: an entry from an earlier
	// run of the same joiner is not this attempt's. Empty matches any run.
	OwnerRun string
	// GivenName, Surname, DisplayName, Mail, Title, Department and ManagerDN
	// are mapped to the matching directory attributes when not empty.
	GivenName, Surname, DisplayName, Mail, Title, Department, ManagerDN string
	// NonHuman places the entry under ServiceAccountsDN without
	// interactive-login attributes.
	NonHuman bool
	// Extra holds further attributes from the policy's attribute mapping. It
	// overrides the mapped value of the same attribute but may not touch the
	// identity attributes (object classes, username, employee id, password,
	// account control).
	Extra map[string][]string
}

// Account is the outcome of a claim.
type Account struct {
	// Username is the claimed login name.
	Username string
	// DN is the entry's distinguished name.
	DN string
	// Existing is true when the entry was already there with this joiner's
	// marker and run (an earlier attempt of this claim succeeded).
	Existing bool
}

// Entry is a directory entry as read back by the connector. Password
// attributes are never included, nor binary ones (objectGUID, objectSid,
// jpegPhoto): entries travel in activity results.
type Entry struct {
	// DN is the entry's distinguished name.
	DN string
	// Username is the value of the profile's username attribute.
	Username string
	// EmployeeID is the value of the profile's employee id attribute.
	EmployeeID string
	// Owner and OwnerRun are the ownership marker ("" when the entry was
	// not created by Joinery).
	Owner, OwnerRun string
	// Attributes holds every user attribute except passwords, keyed by the
	// name the server returned.
	Attributes map[string][]string
}

// Client talks to one directory. It dials a fresh connection per call, so it
// holds no connection state and is safe for concurrent use.
type Client struct {
	cfg    Config
	tls    *tls.Config
	secure bool // the transport is encrypted (ldaps:// or StartTLS)
}

// validator is implemented by profiles that can check their own settings.
type validator interface{ Validate() error }

// New checks cfg, fills in the defaults and returns a Client. It does not
// contact the server.
func New(cfg Config) (*Client, error) {
	invalid := func(format string, args ...any) (*Client, error) {
		return nil, fmt.Errorf("directory: invalid config: "+format, args...)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return invalid("URL: %v", err)
	}
	switch u.Scheme {
	case "ldap", "ldaps":
		if u.Host == "" {
			return invalid("URL %q has no host", cfg.URL)
		}
	case "ldapi":
	default:
		return invalid("URL %q: scheme must be ldap, ldaps or ldapi", cfg.URL)
	}
	if cfg.StartTLS && u.Scheme != "ldap" {
		return invalid("StartTLS needs an ldap:// URL, not %q", cfg.URL)
	}
	if cfg.BaseDN == "" {
		return invalid("BaseDN is required")
	}
	if cfg.BindDN == "" || cfg.BindPassword == "" {
		return invalid("BindDN and BindPassword are required")
	}
	if cfg.PeopleDN == "" {
		cfg.PeopleDN = "ou=people," + cfg.BaseDN
	}
	if cfg.ServiceAccountsDN == "" {
		cfg.ServiceAccountsDN = "ou=service-accounts," + cfg.BaseDN
	}
	if cfg.GroupsDN == "" {
		cfg.GroupsDN = "ou=groups," + cfg.BaseDN
	}
	for name, dn := range map[string]string{"BaseDN": cfg.BaseDN, "PeopleDN": cfg.PeopleDN,
		"ServiceAccountsDN": cfg.ServiceAccountsDN, "GroupsDN": cfg.GroupsDN} {
		if _, err := ldap.ParseDN(dn); err != nil {
			return invalid("%s %q: %v", name, dn, err)
		}
	}
	if cfg.Timeout < 0 {
		return invalid("Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Profile == nil {
		cfg.Profile = OpenLDAPProfile{}
	}
	if v, ok := cfg.Profile.(validator); ok {
		if err := v.Validate(); err != nil {
			return invalid("profile: %v", err)
		}
	}

	tc := &tls.Config{
		ServerName:         u.Hostname(),
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // opt-in, for test servers
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return invalid("CACertFile: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return invalid("CACertFile %s holds no PEM certificate", cfg.CACertFile)
		}
		tc.RootCAs = pool
	}
	return &Client{cfg: cfg, tls: tc, secure: u.Scheme == "ldaps" || cfg.StartTLS}, nil
}

// Config returns the effective configuration, defaults filled in. The bind
// password is blanked: callers log this.
func (c *Client) Config() Config {
	cfg := c.cfg
	cfg.BindPassword = ""
	return cfg
}

// GroupDN returns the DN of the group with common name cn under GroupsDN.
func (c *Client) GroupDN(cn string) string {
	return "cn=" + ldap.EscapeDN(cn) + "," + c.cfg.GroupsDN
}

// parentDN is the container of a joiner's entry.
func (c *Client) parentDN(nonHuman bool) string {
	if nonHuman {
		return c.cfg.ServiceAccountsDN
	}
	return c.cfg.PeopleDN
}

// sensitiveAttributes are never copied into an Entry: entries end up in
// activity results, and activity results end up in workflow history.
var sensitiveAttributes = []string{"userPassword", "unicodePwd", "supplementalCredentials", "dBCSPwd", "ntPwdHistory", "lmPwdHistory"}

func (c *Client) toEntry(e *ldap.Entry) *Entry {
	out := &Entry{
		DN:         e.DN,
		Username:   e.GetEqualFoldAttributeValue(c.cfg.Profile.UsernameAttribute()),
		EmployeeID: e.GetEqualFoldAttributeValue(c.cfg.Profile.EmployeeIDAttribute()),
		Owner:      e.GetEqualFoldAttributeValue(c.cfg.Profile.OwnerAttribute()),
		OwnerRun:   e.GetEqualFoldAttributeValue(c.cfg.Profile.OwnerRunAttribute()),
		Attributes: make(map[string][]string, len(e.Attributes)),
	}
	for _, a := range e.Attributes {
		if isSensitive(a.Name) || slices.ContainsFunc(a.Values, isBinary) {
			continue
		}
		out.Attributes[a.Name] = append([]string(nil), a.Values...)
	}
	return out
}

// isBinary spots values that are not text (GUIDs, SIDs, photos).
func isBinary(v string) bool { return !utf8.ValidString(v) }

func isSensitive(attr string) bool {
	for _, s := range sensitiveAttributes {
		if strings.EqualFold(s, attr) {
			return true
		}
	}
	return false
}

// sameDN compares two DNs the way the directory does (case-insensitive
// attribute types and values, normalised escaping); unparsable DNs fall back
// to a case-insensitive string comparison.
func sameDN(a, b string) bool {
	pa, errA := ldap.ParseDN(a)
	pb, errB := ldap.ParseDN(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return pa.EqualFold(pb)
}

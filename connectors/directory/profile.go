package directory

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// Profile maps Joinery's view of a joiner onto one directory flavour's schema.
// OpenLDAPProfile and ADProfile are the two implementations.
type Profile interface {
	// UsernameAttribute names the attribute holding the login name, on which
	// uniqueness is claimed (uid, sAMAccountName).
	UsernameAttribute() string
	// EmployeeIDAttribute names the attribute holding the HR employee id
	// (employeeNumber, employeeID).
	EmployeeIDAttribute() string
	// OwnerAttribute names the attribute holding the ownership marker: the
	// ID of the joiner (workflow) that created the entry (joineryJoiner,
	// or an AD extension attribute).
	OwnerAttribute() string
	// OwnerRunAttribute names the attribute holding the run of that joiner
	// that created the entry, which tells a retried claim of this run from
	// an earlier run of the same joiner.
	OwnerRunAttribute() string
	// AssertsOwner reports whether the server honours the RFC 4528
	// assertion control, so that a modify or delete can carry the owner
	// check and fail atomically (122) instead of reading first.
	AssertsOwner() bool
	// Entry maps a username and a person to the entry to add. It validates
	// both and returns an error wrapping ErrInvalidUsername for a username the
	// directory cannot hold.
	Entry(username string, p Person) (Draft, error)
	// DisableChanges returns the modifications that disable current, or none
	// when it is already disabled. current.Attributes holds every user
	// attribute except passwords.
	DisableChanges(current *Entry) []ldap.Change
	// PasswordChanges returns the modifications that set password, or none
	// to use the Password Modify extended operation (RFC 3062). secure tells
	// whether the connection is encrypted.
	PasswordChanges(password string, secure bool) ([]ldap.Change, error)
}

// Draft is an entry about to be added.
type Draft struct {
	// RDNs are the relative DNs to try, in order, under the parent container.
	// A later RDN is used only when an earlier one is held by an entry that
	// does not hold the username (AD's cn=<display name> collisions).
	RDNs []string
	// Attributes are the attributes of the add request.
	Attributes []ldap.Attribute
}

// Defaults of OpenLDAPProfile's POSIX settings.
const (
	DefaultUIDNumberBase = 10000
	DefaultGIDNumber     = 100 // "users" on Debian-family systems
	DefaultHomeBase      = "/home"
	DefaultLoginShell    = "/bin/bash"
	// NoLoginShell is the shell of non-human and disabled POSIX accounts.
	NoLoginShell = "/usr/sbin/nologin"
)

// Disabling without ppolicy: OpenLDAP has no account flag, so Disable
// replaces the password with a value no password can ever match and records
// the fact in description.
const (
	// LockedPassword is the userPassword of a disabled OpenLDAP entry. The
	// {CRYPT} scheme hashes the candidate with crypt(3) using the stored value
	// as salt; "!" is not a valid salt, so no input can produce it.
	LockedPassword = "{CRYPT}!"
	// DisabledMarker is the description value recording that Joinery
	// disabled the entry.
	DisabledMarker = "joinery: account disabled"
)

// The ownership marker of OpenLDAP entries (testdata/ldap/joinery.schema).
const (
	// ManagedClass is the auxiliary object class every entry Joinery
	// creates carries.
	ManagedClass = "joineryManaged"
	// JoinerAttribute is the joiner (workflow ID) that created the entry.
	JoinerAttribute = "joineryJoiner"
	// JoinerRunAttribute is the run of that joiner that created it.
	JoinerRunAttribute = "joineryRun"
)

// OpenLDAPProfile stores joiners as inetOrgPerson entries named uid=<username>,
// optionally with posixAccount, and the joineryManaged marker class. The
// directory must load testdata/ldap/joinery.schema.
type OpenLDAPProfile struct {
	// Posix adds the posixAccount class: uidNumber, gidNumber, homeDirectory
	// and loginShell. It requires numeric employee ids.
	Posix bool
	// UIDNumberBase is added to the numeric employee id to derive uidNumber,
	// so that a retried claim always yields the same number; 0 means
	// DefaultUIDNumberBase.
	UIDNumberBase uint32
	// ServiceUIDNumberBase is UIDNumberBase for non-human entries, whose ids
	// may come from another numbering; 0 means UIDNumberBase.
	ServiceUIDNumberBase uint32
	// GIDNumber is the primary group of every account; 0 means
	// DefaultGIDNumber.
	GIDNumber uint32
	// HomeBase is the parent of home directories; "" means DefaultHomeBase.
	HomeBase string
	// LoginShell is the shell of human accounts; "" means DefaultLoginShell.
	// Non-human accounts always get NoLoginShell.
	LoginShell string
}

var _ Profile = OpenLDAPProfile{}

// UsernameAttribute implements Profile.
func (OpenLDAPProfile) UsernameAttribute() string { return "uid" }

// EmployeeIDAttribute implements Profile.
func (OpenLDAPProfile) EmployeeIDAttribute() string { return "employeeNumber" }

// OwnerAttribute implements Profile.
func (OpenLDAPProfile) OwnerAttribute() string { return JoinerAttribute }

// OwnerRunAttribute implements Profile.
func (OpenLDAPProfile) OwnerRunAttribute() string { return JoinerRunAttribute }

// AssertsOwner implements Profile: OpenLDAP supports the assertion control
// on modify and delete (not on the Password Modify extended operation).
func (OpenLDAPProfile) AssertsOwner() bool { return true }

// openLDAPProtected are the attributes Person.Extra may not set: they carry
// the entry's identity, its owner or its credentials.
var openLDAPProtected = []string{"objectClass", "uid", "employeeNumber", "userPassword", "uidNumber", JoinerAttribute, JoinerRunAttribute}

// posixName is the portable subset of POSIX user names (plus dots, which
// Joinery's naming patterns use): it keeps /home/<uid> a single safe path
// component.
var posixName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// Entry implements Profile.
func (o OpenLDAPProfile) Entry(username string, p Person) (Draft, error) {
	if err := checkUsername(username, 256); err != nil {
		return Draft{}, err
	}
	if o.Posix && (!posixName.MatchString(username) || len(username) > 32) {
		return Draft{}, fmt.Errorf("%w: %q is not a portable POSIX user name (letters, digits, . _ -; at most 32)", ErrInvalidUsername, username)
	}
	if err := checkPerson(p); err != nil {
		return Draft{}, err
	}
	cn := displayName(username, p)
	sn := p.Surname
	if sn == "" {
		sn = cn // person requires sn; a service account has no surname
	}
	var a attrList
	if o.Posix {
		a.set("objectClass", "inetOrgPerson", "posixAccount", ManagedClass)
	} else {
		a.set("objectClass", "inetOrgPerson", ManagedClass)
	}
	a.set("uid", username)
	a.set("cn", cn)
	a.set("sn", sn)
	a.set("givenName", p.GivenName)
	a.set("displayName", cn)
	a.set("mail", p.Mail)
	a.set("employeeNumber", p.EmployeeID)
	a.set("title", p.Title)
	a.set("departmentNumber", p.Department)
	a.set("manager", p.ManagerDN)
	// The marker goes in with the add: the service account may add it to
	// an entry it creates but never change it afterwards (slapd ACLs).
	a.set(JoinerAttribute, p.Owner)
	a.set(JoinerRunAttribute, p.OwnerRun)
	if o.Posix {
		uidNumber, err := o.uidNumber(p)
		if err != nil {
			return Draft{}, err
		}
		shell := o.LoginShell
		if shell == "" {
			shell = DefaultLoginShell
		}
		if p.NonHuman {
			shell = NoLoginShell
		}
		home := o.HomeBase
		if home == "" {
			home = DefaultHomeBase
		}
		gid := o.GIDNumber
		if gid == 0 {
			gid = DefaultGIDNumber
		}
		a.set("uidNumber", strconv.FormatUint(uidNumber, 10))
		a.set("gidNumber", strconv.FormatUint(uint64(gid), 10))
		a.set("homeDirectory", strings.TrimSuffix(home, "/")+"/"+username)
		a.set("loginShell", shell)
	}
	if err := a.merge(p.Extra, openLDAPProtected); err != nil {
		return Draft{}, err
	}
	return Draft{RDNs: []string{"uid=" + ldap.EscapeDN(username)}, Attributes: a.attrs}, nil
}

// uidNumber derives a stable uidNumber from the numeric employee id, so that
// retries and re-creations of the same joiner get the same number and files
// they own keep their owner.
func (o OpenLDAPProfile) uidNumber(p Person) (uint64, error) {
	base := o.UIDNumberBase
	if base == 0 {
		base = DefaultUIDNumberBase
	}
	if p.NonHuman && o.ServiceUIDNumberBase != 0 {
		base = o.ServiceUIDNumberBase
	}
	n, err := strconv.ParseUint(p.EmployeeID, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("posixAccount needs a numeric employee id to derive uidNumber, got %q", p.EmployeeID)
	}
	// 4294967295 is (uid_t)-1 and 4294967294 is commonly nfsnobody: stay below.
	const maxUID = 1<<32 - 3
	uid := uint64(base) + n
	if uid > maxUID {
		return 0, fmt.Errorf("uidNumber %d (base %d + employee id %d) exceeds %d", uid, base, n, uint64(maxUID))
	}
	return uid, nil
}

// DisableChanges implements Profile: lock the password, record the marker
// and, for POSIX accounts, take the shell away so that key-based logins
// through NSS stop too. Replacing the password every time keeps it
// idempotent without reading the (unreadable) current hash.
func (o OpenLDAPProfile) DisableChanges(current *Entry) []ldap.Change {
	changes := []ldap.Change{change(ldap.ReplaceAttribute, "userPassword", LockedPassword)}
	if !hasValue(current, "description", DisabledMarker) {
		changes = append(changes, change(ldap.AddAttribute, "description", DisabledMarker))
	}
	if hasValue(current, "objectClass", "posixAccount") && !hasValue(current, "loginShell", NoLoginShell) {
		changes = append(changes, change(ldap.ReplaceAttribute, "loginShell", NoLoginShell))
	}
	return changes
}

// PasswordChanges implements Profile: OpenLDAP sets passwords through the
// Password Modify extended operation, which hashes them with the server's
// configured scheme instead of storing what the client sent.
func (OpenLDAPProfile) PasswordChanges(string, bool) ([]ldap.Change, error) { return nil, nil }

// ADProfile stores joiners as Active Directory user objects.
type ADProfile struct {
	// UPNSuffix is the userPrincipalName domain: <username>@<UPNSuffix>.
	UPNSuffix string
	// CreateDisabled creates accounts with userAccountControl 514
	// (NORMAL_ACCOUNT|ACCOUNTDISABLE) instead of 512. A domain whose password
	// policy forbids empty passwords refuses an enabled account without one
	// (result 53), and the password is only set after the claim: such domains
	// need CreateDisabled and an explicit enable after SetPassword.
	CreateDisabled bool
	// MarkerAttribute holds the ownership marker (the joiner's workflow ID);
	// "" means DefaultADOwnerAttribute. AD has no Joinery schema, so the
	// marker lives in an extension attribute the organisation reserves
	// for Joinery; see README, "Directory service account".
	MarkerAttribute string
	// MarkerRunAttribute holds the run that created the entry; "" means
	// DefaultADOwnerRunAttribute.
	MarkerRunAttribute string
}

// Default AD marker attributes: msDS-cloudExtensionAttribute1..20 are part of
// the user class since the Windows Server 2012 schema (no Exchange schema
// needed) and are rarely used; the last two are taken for Joinery.
const (
	DefaultADOwnerAttribute    = "msDS-cloudExtensionAttribute20"
	DefaultADOwnerRunAttribute = "msDS-cloudExtensionAttribute19"
)

var _ Profile = ADProfile{}

// AD's limits and userAccountControl flags used here.
const (
	// MaxSAMAccountNameLength is AD's limit on sAMAccountName.
	MaxSAMAccountNameLength = 20
	maxADCNLength           = 64
	uacAccountDisable       = 0x2
	uacNormalAccount        = 0x200
)

// samForbidden are the characters AD does not allow in sAMAccountName.
const samForbidden = `"/\[]:;|=,+*?<>@`

// adProtected are the attributes Person.Extra may not set.
var adProtected = []string{"objectClass", "cn", "name", "distinguishedName", "sAMAccountName",
	"userPrincipalName", "employeeID", "unicodePwd", "userPassword", "userAccountControl", "objectSid"}

// Validate checks the profile's settings.
func (a ADProfile) Validate() error {
	if a.UPNSuffix == "" || strings.ContainsAny(a.UPNSuffix, "@ ") {
		return fmt.Errorf("ADProfile.UPNSuffix must be a domain such as corp.example.com, got %q", a.UPNSuffix)
	}
	for _, attr := range []string{a.OwnerAttribute(), a.OwnerRunAttribute()} {
		if !attributeName.MatchString(attr) || slices.ContainsFunc(adProtected, func(p string) bool { return strings.EqualFold(p, attr) }) {
			return fmt.Errorf("ADProfile owner attribute %q is not a free attribute name", attr)
		}
	}
	if strings.EqualFold(a.OwnerAttribute(), a.OwnerRunAttribute()) {
		return fmt.Errorf("ADProfile owner attributes (MarkerAttribute, MarkerRunAttribute) must differ, both are %q", a.OwnerAttribute())
	}
	return nil
}

// UsernameAttribute implements Profile.
func (ADProfile) UsernameAttribute() string { return "sAMAccountName" }

// EmployeeIDAttribute implements Profile.
func (ADProfile) EmployeeIDAttribute() string { return "employeeID" }

// OwnerAttribute implements Profile.
func (a ADProfile) OwnerAttribute() string {
	if a.MarkerAttribute == "" {
		return DefaultADOwnerAttribute
	}
	return a.MarkerAttribute
}

// OwnerRunAttribute implements Profile.
func (a ADProfile) OwnerRunAttribute() string {
	if a.MarkerRunAttribute == "" {
		return DefaultADOwnerRunAttribute
	}
	return a.MarkerRunAttribute
}

// AssertsOwner implements Profile: AD does not implement RFC 4528, so the
// connector reads the marker and checks it before each change.
func (ADProfile) AssertsOwner() bool { return false }

// Entry implements Profile. The RDN is cn=<display name>, AD's convention; the
// cn attribute itself is left out because AD derives it from the RDN.
func (a ADProfile) Entry(username string, p Person) (Draft, error) {
	if err := a.Validate(); err != nil {
		return Draft{}, err
	}
	if err := checkUsername(username, MaxSAMAccountNameLength); err != nil {
		return Draft{}, err
	}
	if i := strings.IndexAny(username, samForbidden); i >= 0 {
		return Draft{}, fmt.Errorf("%w: %q contains %q, which sAMAccountName forbids", ErrInvalidUsername, username, username[i])
	}
	if strings.HasSuffix(username, ".") {
		return Draft{}, fmt.Errorf("%w: sAMAccountName %q may not end with a period", ErrInvalidUsername, username)
	}
	if err := checkPerson(p); err != nil {
		return Draft{}, err
	}
	display := displayName(username, p)
	uac := uacNormalAccount
	if a.CreateDisabled {
		uac |= uacAccountDisable
	}
	var at attrList
	at.set("objectClass", "top", "person", "organizationalPerson", "user")
	at.set("sAMAccountName", username)
	at.set("userPrincipalName", username+"@"+a.UPNSuffix)
	at.set("givenName", p.GivenName)
	at.set("sn", p.Surname)
	at.set("displayName", display)
	at.set("mail", p.Mail)
	at.set("title", p.Title)
	at.set("department", p.Department)
	at.set("manager", p.ManagerDN)
	at.set("employeeID", p.EmployeeID)
	at.set("userAccountControl", strconv.Itoa(uac))
	at.set(a.OwnerAttribute(), p.Owner)
	at.set(a.OwnerRunAttribute(), p.OwnerRun)
	if err := at.merge(p.Extra, append(slices.Clone(adProtected), a.OwnerAttribute(), a.OwnerRunAttribute())); err != nil {
		return Draft{}, err
	}
	// Two people may share a display name but never a sAMAccountName, so the
	// fallback RDN that appends it is unique whenever the username is.
	suffix := " (" + username + ")"
	rdns := []string{"cn=" + ldap.EscapeDN(truncateRunes(display, maxADCNLength))}
	if alt := "cn=" + ldap.EscapeDN(truncateRunes(display, maxADCNLength-utf8.RuneCountInString(suffix))+suffix); alt != rdns[0] {
		rdns = append(rdns, alt)
	}
	return Draft{RDNs: rdns, Attributes: at.attrs}, nil
}

// DisableChanges implements Profile: set ACCOUNTDISABLE in userAccountControl.
// The change deletes the value read and adds the new one, so it fails (16)
// instead of overwriting a flag someone changed in between.
func (ADProfile) DisableChanges(current *Entry) []ldap.Change {
	old := firstValue(current, "userAccountControl")
	n, err := strconv.ParseUint(old, 10, 32)
	if old == "" || err != nil {
		return []ldap.Change{change(ldap.ReplaceAttribute, "userAccountControl",
			strconv.Itoa(uacNormalAccount|uacAccountDisable))}
	}
	if n&uacAccountDisable != 0 {
		return nil
	}
	return []ldap.Change{
		change(ldap.DeleteAttribute, "userAccountControl", old),
		change(ldap.AddAttribute, "userAccountControl", strconv.FormatUint(n|uacAccountDisable, 10)),
	}
}

// PasswordChanges implements Profile: AD takes the password in unicodePwd as
// the UTF-16LE encoding of the quoted password, and only over an encrypted
// connection. Refusing here keeps the password off a clear-text wire.
func (ADProfile) PasswordChanges(password string, secure bool) ([]ldap.Change, error) {
	if !secure {
		return nil, fmt.Errorf("%w: Active Directory accepts unicodePwd only over ldaps:// or StartTLS", ErrInsecureTransport)
	}
	return []ldap.Change{change(ldap.ReplaceAttribute, "unicodePwd", encodeUnicodePwd(password))}, nil
}

// encodeUnicodePwd returns the quoted password in UTF-16LE, as AD expects.
func encodeUnicodePwd(password string) string {
	units := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 0, 2*len(units))
	for _, u := range units {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

// --- shared helpers ---------------------------------------------------------

// checkUsername rejects names no directory should hold: empty, too long,
// invalid UTF-8, control characters or surrounding spaces.
func checkUsername(username string, maxRunes int) error {
	switch {
	case username == "":
		return fmt.Errorf("%w: empty", ErrInvalidUsername)
	case !utf8.ValidString(username):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidUsername, username)
	case utf8.RuneCountInString(username) > maxRunes:
		return fmt.Errorf("%w: %q is %d characters long, the limit is %d (the naming policy should cap it)",
			ErrInvalidUsername, username, utf8.RuneCountInString(username), maxRunes)
	case strings.IndexFunc(username, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %q contains a control character", ErrInvalidUsername, username)
	case strings.TrimSpace(username) != username:
		return fmt.Errorf("%w: %q has leading or trailing spaces", ErrInvalidUsername, username)
	}
	return nil
}

// checkPerson validates what every profile needs from a person.
func checkPerson(p Person) error {
	if strings.TrimSpace(p.EmployeeID) == "" {
		return errors.New("employee id is required: it links the entry to the HR record")
	}
	if p.ManagerDN != "" {
		if _, err := ldap.ParseDN(p.ManagerDN); err != nil {
			return fmt.Errorf("manager DN %q: %v", p.ManagerDN, err)
		}
	}
	if err := checkOwner(p.Owner); err != nil {
		return err
	}
	if p.OwnerRun != "" && (strings.IndexFunc(p.OwnerRun, unicode.IsControl) >= 0 || len(p.OwnerRun) > maxOwnerLen) {
		return fmt.Errorf("owner run %q is not a run ID", p.OwnerRun)
	}
	return nil
}

// maxOwnerLen bounds marker values (joineryJoiner is a 256-character
// directory string; workflow IDs are far shorter).
const maxOwnerLen = 256

// checkOwner validates an ownership marker value (a joiner's workflow ID).
func checkOwner(owner string) error {
	switch {
	case strings.TrimSpace(owner) == "":
		return errors.New("owner is required: every entry carries the joiner that created it")
	case strings.TrimSpace(owner) != owner, !utf8.ValidString(owner), len(owner) > maxOwnerLen,
		strings.IndexFunc(owner, unicode.IsControl) >= 0:
		return fmt.Errorf("owner %q is not a joiner ID", owner)
	}
	return nil
}

// displayName picks the most human name available.
func displayName(username string, p Person) string {
	if s := strings.TrimSpace(p.DisplayName); s != "" {
		return s
	}
	if s := strings.TrimSpace(p.GivenName + " " + p.Surname); s != "" {
		return s
	}
	return username
}

func truncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:n]))
}

// attrList keeps attributes in insertion order (deterministic requests and
// tests) with case-insensitive names, as LDAP has.
type attrList struct{ attrs []ldap.Attribute }

// set stores vals under name, replacing an earlier value; empty values are
// dropped and an attribute without values is not added.
func (l *attrList) set(name string, vals ...string) {
	vals = slices.DeleteFunc(slices.Clone(vals), func(v string) bool { return v == "" })
	i := slices.IndexFunc(l.attrs, func(a ldap.Attribute) bool { return strings.EqualFold(a.Type, name) })
	switch {
	case len(vals) == 0 && i >= 0:
		l.attrs = slices.Delete(l.attrs, i, i+1)
	case len(vals) == 0:
	case i >= 0:
		l.attrs[i].Vals = vals
	default:
		l.attrs = append(l.attrs, ldap.Attribute{Type: name, Vals: vals})
	}
}

// attributeName is an LDAP attribute description: a name (or numeric OID)
// with optional ;options.
var attributeName = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)(;[A-Za-z0-9-]+)*$`)

// merge applies the policy's extra attributes. Keys are applied in sorted
// order so the request is deterministic; an extra with no values leaves the
// mapped value alone.
func (l *attrList) merge(extra map[string][]string, protected []string) error {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !attributeName.MatchString(k) {
			return fmt.Errorf("extra attribute name %q is not a valid LDAP attribute description", k)
		}
		if slices.ContainsFunc(protected, func(p string) bool { return strings.EqualFold(p, k) }) {
			return fmt.Errorf("extra attribute %q is managed by the directory connector and may not be set by policy", k)
		}
		if slices.ContainsFunc(extra[k], func(v string) bool { return v != "" }) {
			l.set(k, extra[k]...)
		}
	}
	return nil
}

func change(op uint, attr string, vals ...string) ldap.Change {
	return ldap.Change{Operation: op, Modification: ldap.PartialAttribute{Type: attr, Vals: vals}}
}

// values returns e's values of attr, matching the name case-insensitively.
func values(e *Entry, attr string) []string {
	if e == nil {
		return nil
	}
	for k, v := range e.Attributes {
		if strings.EqualFold(k, attr) {
			return v
		}
	}
	return nil
}

func firstValue(e *Entry, attr string) string {
	if v := values(e, attr); len(v) > 0 {
		return v[0]
	}
	return ""
}

func hasValue(e *Entry, attr, want string) bool {
	return slices.ContainsFunc(values(e, attr), func(v string) bool { return strings.EqualFold(v, want) })
}

package directory

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

// attrs turns a draft's attributes into a map for assertions.
func attrs(t *testing.T, d Draft) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, a := range d.Attributes {
		_, dup := m[a.Type]
		require.False(t, dup, "attribute %s appears twice", a.Type)
		require.NotEmpty(t, a.Vals, "attribute %s has no values", a.Type)
		m[a.Type] = a.Vals
	}
	return m
}

var ada = Person{
	EmployeeID: "1042", Owner: "joiner-1042", OwnerRun: "run-1", GivenName: "Ada", Surname: "Lovelace", DisplayName: "Ada Lovelace",
	Mail: "ada@joinery.test", Title: "Engineer", Department: "Engineering",
	ManagerDN: "uid=grace.hopper,ou=people,dc=joinery,dc=test",
}

func TestOpenLDAPProfileEntry(t *testing.T) {
	d, err := OpenLDAPProfile{}.Entry("ada.lovelace", ada)
	require.NoError(t, err)
	require.Equal(t, []string{"uid=ada.lovelace"}, d.RDNs)
	require.Equal(t, map[string][]string{
		"objectClass":      {"inetOrgPerson", ManagedClass},
		"uid":              {"ada.lovelace"},
		"cn":               {"Ada Lovelace"},
		"sn":               {"Lovelace"},
		"givenName":        {"Ada"},
		"displayName":      {"Ada Lovelace"},
		"mail":             {"ada@joinery.test"},
		"employeeNumber":   {"1042"},
		"title":            {"Engineer"},
		"departmentNumber": {"Engineering"},
		"manager":          {"uid=grace.hopper,ou=people,dc=joinery,dc=test"},
		"joineryJoiner":    {"joiner-1042"},
		"joineryRun":       {"run-1"},
	}, attrs(t, d))
}

func TestOpenLDAPProfilePosix(t *testing.T) {
	tests := []struct {
		name    string
		profile OpenLDAPProfile
		person  Person
		want    map[string][]string
	}{
		{
			name:    "defaults",
			profile: OpenLDAPProfile{Posix: true},
			person:  ada,
			want: map[string][]string{
				"objectClass": {"inetOrgPerson", "posixAccount", ManagedClass}, "uidNumber": {"11042"}, "gidNumber": {"100"},
				"homeDirectory": {"/home/ada.lovelace"}, "loginShell": {"/bin/bash"},
			},
		},
		{
			name:    "configured",
			profile: OpenLDAPProfile{Posix: true, UIDNumberBase: 200000, GIDNumber: 5000, HomeBase: "/srv/home/", LoginShell: "/bin/zsh"},
			person:  ada,
			want: map[string][]string{
				"uidNumber": {"201042"}, "gidNumber": {"5000"}, "homeDirectory": {"/srv/home/ada.lovelace"}, "loginShell": {"/bin/zsh"},
			},
		},
		{
			name:    "non-human gets nologin and the service base",
			profile: OpenLDAPProfile{Posix: true, ServiceUIDNumberBase: 900000, LoginShell: "/bin/zsh"},
			person:  Person{EmployeeID: "7", Owner: "joiner-7", DisplayName: "CI deployer", NonHuman: true},
			want: map[string][]string{
				"uidNumber": {"900007"}, "loginShell": {NoLoginShell}, "sn": {"CI deployer"}, "cn": {"CI deployer"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.profile.Entry("ada.lovelace", tt.person)
			require.NoError(t, err)
			got := attrs(t, d)
			for k, v := range tt.want {
				require.Equal(t, v, got[k], k)
			}
			require.NotContains(t, got, "userPassword")
		})
	}
}

func TestOpenLDAPProfileUIDNumberIsDeterministic(t *testing.T) {
	p := OpenLDAPProfile{Posix: true}
	a, err := p.Entry("x", ada)
	require.NoError(t, err)
	b, err := p.Entry("y", ada)
	require.NoError(t, err)
	require.Equal(t, attrs(t, a)["uidNumber"], attrs(t, b)["uidNumber"])
}

func TestOpenLDAPProfileRejects(t *testing.T) {
	long := strings.Repeat("a", 257)
	tests := []struct {
		name       string
		profile    OpenLDAPProfile
		username   string
		person     Person
		isUsername bool // the error wraps ErrInvalidUsername
		contains   string
	}{
		{"empty username", OpenLDAPProfile{}, "", ada, true, "empty"},
		{"too long", OpenLDAPProfile{}, long, ada, true, "limit is 256"},
		{"spaces", OpenLDAPProfile{}, " ada", ada, true, "spaces"},
		{"control", OpenLDAPProfile{}, "ada\n", ada, true, "control"},
		{"bad utf8", OpenLDAPProfile{}, "ad\xffa", ada, true, "UTF-8"},
		{"posix name", OpenLDAPProfile{Posix: true}, "ada/../root", ada, true, "POSIX"},
		{"no employee id", OpenLDAPProfile{}, "ada", Person{GivenName: "Ada"}, false, "employee id is required"},
		{"non-numeric id with posix", OpenLDAPProfile{Posix: true}, "ada", Person{EmployeeID: "E-1", Owner: "joiner-E-1"}, false, "numeric employee id"},
		{"uid overflow", OpenLDAPProfile{Posix: true, UIDNumberBase: 4294967000}, "ada", Person{EmployeeID: "4000", Owner: "joiner-4000"}, false, "exceeds"},
		{"bad manager", OpenLDAPProfile{}, "ada", Person{EmployeeID: "1", Owner: "joiner-1", ManagerDN: "not a dn"}, false, "manager DN"},
		{"protected extra", OpenLDAPProfile{}, "ada", Person{EmployeeID: "1", Owner: "joiner-1", Extra: map[string][]string{"UID": {"root"}}}, false, "managed by the directory connector"},
		{"bad extra name", OpenLDAPProfile{}, "ada", Person{EmployeeID: "1", Owner: "joiner-1", Extra: map[string][]string{"x)(uid=*": {"v"}}}, false, "not a valid LDAP attribute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.profile.Entry(tt.username, tt.person)
			require.Error(t, err)
			require.ErrorContains(t, err, tt.contains)
			require.Equal(t, tt.isUsername, errors.Is(err, ErrInvalidUsername))
		})
	}
}

func TestOpenLDAPProfileEscapesRDN(t *testing.T) {
	d, err := OpenLDAPProfile{}.Entry("a,b+c", Person{EmployeeID: "1", Owner: "joiner-1"})
	require.NoError(t, err)
	require.Equal(t, []string{`uid=a\,b\+c`}, d.RDNs)
	dn, err := ldap.ParseDN(d.RDNs[0] + ",ou=people,dc=x")
	require.NoError(t, err)
	require.Equal(t, "a,b+c", dn.RDNs[0].Attributes[0].Value)
}

func TestExtraAttributes(t *testing.T) {
	p := ada
	p.Extra = map[string][]string{
		"title":           {"Staff Engineer"},    // overrides the mapped value
		"telephoneNumber": {"+44 20 1", "+44 2"}, // added
		"l":               {""},                  // empty: ignored
		"mail":            nil,                   // no values: the mapped one stays
	}
	d, err := OpenLDAPProfile{}.Entry("ada", p)
	require.NoError(t, err)
	got := attrs(t, d)
	require.Equal(t, []string{"Staff Engineer"}, got["title"])
	require.Equal(t, []string{"+44 20 1", "+44 2"}, got["telephoneNumber"])
	require.Equal(t, []string{"ada@joinery.test"}, got["mail"])
	require.NotContains(t, got, "l")
}

func TestOpenLDAPDisableChanges(t *testing.T) {
	plain := &Entry{Attributes: map[string][]string{"objectClass": {"inetOrgPerson"}}}
	require.Equal(t, []ldap.Change{
		change(ldap.ReplaceAttribute, "userPassword", LockedPassword),
		change(ldap.AddAttribute, "description", DisabledMarker),
	}, OpenLDAPProfile{}.DisableChanges(plain))

	posix := &Entry{Attributes: map[string][]string{"objectclass": {"inetOrgPerson", "posixAccount", ManagedClass}, "loginShell": {"/bin/bash"}}}
	require.Equal(t, []ldap.Change{
		change(ldap.ReplaceAttribute, "userPassword", LockedPassword),
		change(ldap.AddAttribute, "description", DisabledMarker),
		change(ldap.ReplaceAttribute, "loginShell", NoLoginShell),
	}, OpenLDAPProfile{}.DisableChanges(posix))

	// Already disabled: only the idempotent password replace remains.
	done := &Entry{Attributes: map[string][]string{
		"objectClass": {"inetOrgPerson", "posixAccount", ManagedClass}, "loginShell": {NoLoginShell}, "description": {"x", DisabledMarker},
	}}
	require.Equal(t, []ldap.Change{change(ldap.ReplaceAttribute, "userPassword", LockedPassword)},
		OpenLDAPProfile{}.DisableChanges(done))
}

func TestOpenLDAPPasswordUsesExtendedOperation(t *testing.T) {
	changes, err := OpenLDAPProfile{}.PasswordChanges("s3cret", false)
	require.NoError(t, err)
	require.Empty(t, changes)
}

func TestADProfileEntry(t *testing.T) {
	d, err := ADProfile{UPNSuffix: "corp.example.com"}.Entry("alovelace", ada)
	require.NoError(t, err)
	require.Equal(t, []string{"cn=Ada Lovelace", "cn=Ada Lovelace (alovelace)"}, d.RDNs)
	require.Equal(t, map[string][]string{
		"objectClass":        {"top", "person", "organizationalPerson", "user"},
		"sAMAccountName":     {"alovelace"},
		"userPrincipalName":  {"alovelace@corp.example.com"},
		"givenName":          {"Ada"},
		"sn":                 {"Lovelace"},
		"displayName":        {"Ada Lovelace"},
		"mail":               {"ada@joinery.test"},
		"title":              {"Engineer"},
		"department":         {"Engineering"},
		"manager":            {"uid=grace.hopper,ou=people,dc=joinery,dc=test"},
		"employeeID":         {"1042"},
		"userAccountControl": {"512"},
		// The ownership marker, in the reserved extension attributes.
		DefaultADOwnerAttribute:    {"joiner-1042"},
		DefaultADOwnerRunAttribute: {"run-1"},
	}, attrs(t, d))

	d, err = ADProfile{UPNSuffix: "corp.example.com", CreateDisabled: true}.Entry("alovelace", ada)
	require.NoError(t, err)
	require.Equal(t, []string{"514"}, attrs(t, d)["userAccountControl"])
}

func TestADProfileRDN(t *testing.T) {
	p := ADProfile{UPNSuffix: "corp.example.com"}
	d, err := p.Entry("smith", Person{EmployeeID: "1", Owner: "joiner-1", DisplayName: "Smith, John"})
	require.NoError(t, err)
	require.Equal(t, []string{`cn=Smith\, John`, `cn=Smith\, John (smith)`}, d.RDNs)

	// cn is limited to 64 characters; the fallback keeps the username whole.
	long := strings.Repeat("x", 80)
	d, err = p.Entry("longname", Person{EmployeeID: "1", Owner: "joiner-1", DisplayName: long})
	require.NoError(t, err)
	require.Equal(t, "cn="+strings.Repeat("x", 64), d.RDNs[0])
	require.Equal(t, "cn="+strings.Repeat("x", 53)+" (longname)", d.RDNs[1])

	// No display name at all: cn falls back to the username, once.
	d, err = p.Entry("svc-ci", Person{EmployeeID: "1", Owner: "joiner-1", NonHuman: true})
	require.NoError(t, err)
	require.Equal(t, []string{"cn=svc-ci", "cn=svc-ci (svc-ci)"}, d.RDNs)
}

func TestADProfileRejects(t *testing.T) {
	p := ADProfile{UPNSuffix: "corp.example.com"}
	tests := []struct {
		username string
		contains string
	}{
		{"abcdefghijklmnopqrstu", "21 characters long, the limit is 20"},
		{"john@smith", "forbids"},
		{"a[b]", "forbids"},
		{"j.smith.", "period"},
		{"", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			_, err := p.Entry(tt.username, ada)
			require.ErrorIs(t, err, ErrInvalidUsername)
			require.ErrorContains(t, err, tt.contains)
		})
	}
	// Exactly 20 characters is fine.
	_, err := p.Entry("abcdefghijklmnopqrst", ada)
	require.NoError(t, err)

	_, err = p.Entry("ok", Person{EmployeeID: "1", Owner: "joiner-1", Extra: map[string][]string{"userAccountControl": {"66048"}}})
	require.ErrorContains(t, err, "managed by the directory connector")

	_, err = ADProfile{}.Entry("ok", ada)
	require.ErrorContains(t, err, "UPNSuffix")
}

func TestADDisableChanges(t *testing.T) {
	entry := func(uac string) *Entry {
		return &Entry{Attributes: map[string][]string{"userAccountControl": {uac}}}
	}
	require.Equal(t, []ldap.Change{
		change(ldap.DeleteAttribute, "userAccountControl", "512"),
		change(ldap.AddAttribute, "userAccountControl", "514"),
	}, ADProfile{}.DisableChanges(entry("512")))
	// Other flags (DONT_EXPIRE_PASSWORD 0x10000) survive.
	require.Equal(t, []ldap.Change{
		change(ldap.DeleteAttribute, "userAccountControl", "66048"),
		change(ldap.AddAttribute, "userAccountControl", "66050"),
	}, ADProfile{}.DisableChanges(entry("66048")))
	require.Empty(t, ADProfile{}.DisableChanges(entry("514")), "already disabled")
	require.Equal(t, []ldap.Change{change(ldap.ReplaceAttribute, "userAccountControl", "514")},
		ADProfile{}.DisableChanges(&Entry{Attributes: map[string][]string{}}))
}

func TestADPasswordChanges(t *testing.T) {
	_, err := ADProfile{}.PasswordChanges("Secret1!", false)
	require.ErrorIs(t, err, ErrInsecureTransport)
	require.NotContains(t, err.Error(), "Secret1!")

	changes, err := ADProfile{}.PasswordChanges("Pä1", true)
	require.NoError(t, err)
	require.Len(t, changes, 1)
	require.Equal(t, "unicodePwd", changes[0].Modification.Type)
	// "Pä1" quoted, UTF-16LE.
	require.Equal(t, []byte{'"', 0, 'P', 0, 0xe4, 0, '1', 0, '"', 0}, []byte(changes[0].Modification.Vals[0]))
}

// Every entry carries its creator; the marker is the connector's, never the
// policy's to set.
func TestProfilesRequireAndProtectTheOwner(t *testing.T) {
	for _, p := range []Profile{OpenLDAPProfile{}, ADProfile{UPNSuffix: "corp.example.com"}} {
		_, err := p.Entry("ada", Person{EmployeeID: "1"})
		require.ErrorContains(t, err, "owner is required")
		_, err = p.Entry("ada", Person{EmployeeID: "1", Owner: "joiner 1\n"})
		require.ErrorContains(t, err, "not a joiner ID")
		_, err = p.Entry("ada", Person{EmployeeID: "1", Owner: "joiner-1", Extra: map[string][]string{p.OwnerAttribute(): {"joiner-2"}}})
		require.ErrorContains(t, err, "managed by the directory connector")
		_, err = p.Entry("ada", Person{EmployeeID: "1", Owner: "joiner-1", Extra: map[string][]string{p.OwnerRunAttribute(): {"r"}}})
		require.ErrorContains(t, err, "managed by the directory connector")
	}
	require.True(t, OpenLDAPProfile{}.AssertsOwner())
	require.False(t, ADProfile{}.AssertsOwner())

	// AD's marker attributes are configurable, and must be free ones.
	ad := ADProfile{UPNSuffix: "corp.example.com", MarkerAttribute: "extensionAttribute15", MarkerRunAttribute: "extensionAttribute14"}
	require.NoError(t, ad.Validate())
	d, err := ad.Entry("ada", Person{EmployeeID: "1", Owner: "joiner-1", OwnerRun: "r1"})
	require.NoError(t, err)
	require.Equal(t, []string{"joiner-1"}, attrs(t, d)["extensionAttribute15"])
	require.Equal(t, []string{"r1"}, attrs(t, d)["extensionAttribute14"])
	require.Error(t, ADProfile{UPNSuffix: "corp.example.com", MarkerAttribute: "employeeID"}.Validate())
	require.Error(t, ADProfile{UPNSuffix: "corp.example.com", MarkerAttribute: "x", MarkerRunAttribute: "X"}.Validate())
}

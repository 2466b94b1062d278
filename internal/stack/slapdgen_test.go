package stack

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testImage(t *testing.T) SlapdImage {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	return SlapdImage{RepoDir: repo, Dir: t.TempDir(), RootPassword: "root-password-of-sixteen+", ServicePassword: "service-password-of-sixteen+"}
}

// The image's slapd.conf is the dev stack's, line for line, except the
// rootdn's password (a salted hash of the operator's instead of the dev
// value in clear) and, with TLS, the refusal of clear-text simple binds.
func TestSlapdImageConfigIsTheDevStacksWithTheOperatorsRootPassword(t *testing.T) {
	img := testImage(t)
	dev, err := Config{RepoDir: img.RepoDir}.slapdConfText(img.Dir)
	require.NoError(t, err)
	got, err := img.Config()
	require.NoError(t, err)
	require.Contains(t, dev, "\nrootpw "+LDAPBindPassword+"\n")
	require.NotContains(t, got, LDAPBindPassword)
	require.NotContains(t, got, img.RootPassword)
	rootpw := regexp.MustCompile(`(?m)^rootpw .*$`)
	require.Regexp(t, `(?m)^rootpw \{SSHA\}[A-Za-z0-9+/=]{40}$`, got)
	require.Equal(t, rootpw.ReplaceAllString(dev, "rootpw X"), rootpw.ReplaceAllString(got, "rootpw X"))

	img.TLS = &TLSFiles{CA: "a", Cert: "b", Key: "c"}
	devTLS, err := Config{RepoDir: img.RepoDir, LDAPTLS: &TLSFiles{CA: filepath.Join(img.Dir, "tls", "ca.pem"),
		Cert: filepath.Join(img.Dir, "tls", "cert.pem"), Key: filepath.Join(img.Dir, "tls", "key.pem")}}.slapdConfText(img.Dir)
	require.NoError(t, err)
	got, err = img.Config()
	require.NoError(t, err)
	got = strings.Replace(got, "security simple_bind=128\n\n", "", 1)
	require.Equal(t, rootpw.ReplaceAllString(devTLS, "rootpw X"), rootpw.ReplaceAllString(got, "rootpw X"))
}

// The seed is testdata/ldap/seed.ldif with the service account's password
// replaced and, without DemoPeople, every other password locked.
func TestSlapdImageSeed(t *testing.T) {
	img := testImage(t)
	seed, err := img.Seed()
	require.NoError(t, err)
	require.NotContains(t, seed, img.ServicePassword)
	require.Equal(t, 1, strings.Count(seed, "userPassword: {SSHA}"), "only the service account has a usable password")
	require.Equal(t, 7, strings.Count(seed, "userPassword: {CRYPT}!"), "five seed people and the inbox account (no password given) locked, plus the one locked already")
	block := seed[strings.Index(seed, "dn: "+LDAPServiceDN):]
	block = block[:strings.Index(block, "\n\n")]
	require.Regexp(t, `userPassword: \{SSHA\}`, block)
	require.NotContains(t, block, "Ctou9AxhlNOevuMX5aKt3n+IkHdBi7wC", "not the dev hash")
	for _, dn := range []string{"dc=joinery,dc=test", "ou=people,", "ou=groups,", "cn=all-staff,", "uid=ada.lovelace,"} {
		require.Contains(t, seed, "dn: "+dn)
	}

	img.DemoPeople = true
	seed, err = img.Seed()
	require.NoError(t, err)
	require.Equal(t, 6, strings.Count(seed, "userPassword: {SSHA}"), "the seed people keep their dev hashes")
	require.NotContains(t, seed, "cauY9N7i3MXVmg3Pen/j4hXZhRov4Gkf", "never the inbox's dev hash")

	// With the operator's inbox password, the inbox account gets its hash.
	img.DemoPeople, img.InboxPassword = false, "inbox-password-of-sixteen+"
	seed, err = img.Seed()
	require.NoError(t, err)
	require.NotContains(t, seed, img.InboxPassword)
	require.Equal(t, 2, strings.Count(seed, "userPassword: {SSHA}"), "the service and inbox accounts")
	block = seed[strings.Index(seed, "dn: "+LDAPInboxDN):]
	block = block[:strings.Index(block, "\n\n")]
	require.Regexp(t, `userPassword: \{SSHA\}`, block)
	require.NotContains(t, block, "cauY9N7i3MXVmg3Pen/j4hXZhRov4Gkf", "not the dev hash")
}

func TestSlapdImageRefusesWeakSecrets(t *testing.T) {
	for name, mut := range map[string]func(*SlapdImage){
		"no root":       func(s *SlapdImage) { s.RootPassword = "" },
		"short service": func(s *SlapdImage) { s.ServicePassword = "short" },
		"dev service":   func(s *SlapdImage) { s.ServicePassword = LDAPServicePassword },
		"same":          func(s *SlapdImage) { s.ServicePassword = s.RootPassword },
		"newline":       func(s *SlapdImage) { s.RootPassword = "root-password-of-sixteen\nrootdn x" },
		"no dir":        func(s *SlapdImage) { s.Dir = "" },
		"short inbox":   func(s *SlapdImage) { s.InboxPassword = "short" },
		"dev inbox":     func(s *SlapdImage) { s.InboxPassword = LDAPInboxPassword },
		"inbox=service": func(s *SlapdImage) { s.InboxPassword = s.ServicePassword },
		"inbox=root":    func(s *SlapdImage) { s.InboxPassword = s.RootPassword },
		"inbox newline": func(s *SlapdImage) { s.InboxPassword = "inbox-password-of-sixteen\nx" },
	} {
		img := testImage(t)
		mut(&img)
		_, err := img.Config()
		require.Error(t, err, name)
		_, err = img.Seed()
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "root-password-of-sixteen", "%s: the error does not echo a secret", name)
	}
}

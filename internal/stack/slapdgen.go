package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // {SSHA} is what slapd verifies; the salt, not the hash, defeats precomputation
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The dev stack's slapd and the OpenLDAP image of docker-compose.yml (the
// Dockerfile's openldap target, whose entrypoint is internal/cmd/slapdinit)
// are configured by one generator, so schema, indexes, access rules and seed
// never drift apart: slapdConfText (servers.go) renders slapd.conf for both.
// What differs is only what must: the image takes the rootdn's and the
// service account's passwords from its operator instead of the dev values,
// keeps the seed people's dev passwords only when asked to, and serves TLS
// with the certificates its deployment generated.

// SlapdImage is the configuration of a slapd outside the dev stack.
type SlapdImage struct {
	// RepoDir holds testdata/ldap (schema, seed) and testdata/policy
	// (whose group catalogue the access rules allow), as in a checkout.
	RepoDir string
	// Dir receives slapd.conf, seed.ldif, TLS copies and data/.
	Dir string
	// RootPassword is the rootdn's (cn=admin) password. Required: slapd.conf
	// carries only its salted hash.
	RootPassword string
	// ServicePassword is the worker's service account's password
	// (LDAPServiceDN). Required.
	ServicePassword string
	// InboxPassword is the approval inbox's account's password
	// (LDAPInboxDN). Empty locks the account ({CRYPT}!): a directory for a
	// deployment without the inbox has no usable password it never gave out.
	InboxPassword string
	// DemoPeople keeps the seed people's dev passwords (README, "Dev
	// sign-in"). Off, their entries exist but cannot bind, so no well-known
	// password reaches a deployment unnoticed.
	DemoPeople bool
	// TLS, when set, is copied into Dir/tls and served (StartTLS on the
	// ldap:// listener, and ldaps:// where the caller listens on it).
	TLS *TLSFiles
}

// minSlapdSecret is the shortest rootdn or service password accepted: a
// deployment's directory credentials are not the dev stack's short words.
const minSlapdSecret = 16

func (s SlapdImage) validate() error {
	var problems []string
	if s.RepoDir == "" || s.Dir == "" {
		problems = append(problems, "repository and output directories are required")
	}
	secrets := map[string]string{"root password": s.RootPassword, "service account password": s.ServicePassword}
	if s.InboxPassword != "" {
		secrets["inbox account password"] = s.InboxPassword
	}
	for _, name := range []string{"root password", "service account password", "inbox account password"} {
		v, ok := secrets[name]
		switch {
		case !ok:
			// The inbox's is optional (InboxPassword).
		case v == "":
			problems = append(problems, name+" is required")
		case len(v) < minSlapdSecret:
			problems = append(problems, fmt.Sprintf("%s is shorter than %d characters", name, minSlapdSecret))
		case strings.ContainsAny(v, "\n\r"):
			problems = append(problems, name+" contains a line break")
		case v == LDAPBindPassword || v == LDAPServicePassword || v == LDAPInboxPassword:
			problems = append(problems, name+" is a dev stack password")
		}
	}
	if s.RootPassword != "" && s.RootPassword == s.ServicePassword {
		problems = append(problems, "the root and service account passwords must differ")
	}
	// One identity's password must not open another's: the inbox faces
	// browsers, and whoever learns its password must not become the worker.
	if s.InboxPassword != "" && (s.InboxPassword == s.RootPassword || s.InboxPassword == s.ServicePassword) {
		problems = append(problems, "the inbox account password must differ from the root and service account passwords")
	}
	if len(problems) > 0 {
		return errors.New("slapd: " + strings.Join(problems, "; "))
	}
	return nil
}

// Config renders slapd.conf: the dev stack's text (slapdConfText), with
// the rootdn's password replaced by the salted hash of RootPassword and the
// TLS files at their copies in Dir/tls.
func (s SlapdImage) Config() (string, error) {
	if err := s.validate(); err != nil {
		return "", err
	}
	c := Config{RepoDir: s.RepoDir}
	if s.TLS != nil {
		c.LDAPTLS = &TLSFiles{CA: filepath.Join(s.Dir, "tls", "ca.pem"),
			Cert: filepath.Join(s.Dir, "tls", "cert.pem"), Key: filepath.Join(s.Dir, "tls", "key.pem")}
	}
	text, err := c.slapdConfText(s.Dir)
	if err != nil {
		return "", err
	}
	// The dev stack writes its well-known rootpw in clear; exactly one such
	// line must be there to replace, or the generator changed and this must
	// be looked at again rather than ship the dev password.
	dev := "\nrootpw " + LDAPBindPassword + "\n"
	if n := strings.Count(text, dev); n != 1 {
		return "", fmt.Errorf("slapd: generated config has %d dev rootpw lines, want 1", n)
	}
	hash, err := SSHA(s.RootPassword)
	if err != nil {
		return "", err
	}
	text = strings.Replace(text, dev, "\nrootpw "+hash+"\n", 1)
	if s.TLS != nil {
		// StartTLS is offered on ldap://; refuse simple binds in clear so a
		// client that forgot it fails instead of sending its password.
		text = strings.Replace(text, "\ndatabase mdb", "\nsecurity simple_bind=128\n\ndatabase mdb", 1)
	}
	return text, nil
}

// Seed renders the seed LDIF: testdata/ldap/seed.ldif with the service
// account's password set to the salted hash of ServicePassword, the inbox
// account's to that of InboxPassword (locked when it is empty) and, unless
// DemoPeople, every other userPassword locked ({CRYPT}! never matches).
func (s SlapdImage) Seed() (string, error) {
	if err := s.validate(); err != nil {
		return "", err
	}
	f, err := os.Open(filepath.Join(s.RepoDir, "testdata", "ldap", "seed.ldif"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	svc, err := SSHA(s.ServicePassword)
	if err != nil {
		return "", err
	}
	inbox := LockedUserPassword
	if s.InboxPassword != "" {
		if inbox, err = SSHA(s.InboxPassword); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	var dn string
	skipping, sawService, sawInbox := false, false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if skipping && strings.HasPrefix(line, " ") {
			continue // continuation of a replaced value
		}
		skipping = false
		switch {
		case line == "":
			dn = ""
		case strings.HasPrefix(line, "dn:"):
			dn = strings.TrimSpace(strings.TrimPrefix(line, "dn:"))
		case strings.HasPrefix(strings.ToLower(line), "userpassword:"):
			skipping = true
			switch {
			case strings.EqualFold(dn, LDAPServiceDN):
				line, sawService = "userPassword: "+svc, true
			case strings.EqualFold(dn, LDAPInboxDN):
				line, sawInbox = "userPassword: "+inbox, true
			case !s.DemoPeople:
				line = "userPassword: " + LockedUserPassword
			default:
				skipping = false
			}
		}
		b.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if !sawService {
		return "", fmt.Errorf("slapd: the seed has no password line for %s", LDAPServiceDN)
	}
	if !sawInbox {
		// Otherwise the seed's dev hash would be what a deployment gets.
		return "", fmt.Errorf("slapd: the seed has no password line for %s", LDAPInboxDN)
	}
	return b.String(), nil
}

// Write puts slapd.conf, seed.ldif and the TLS copies into Dir and, when
// Dir/data holds no database yet, loads the seed with slapadd. An existing
// database is kept (it holds what joiners created); the configuration is
// rewritten every time, so a new image brings its new access rules.
func (s SlapdImage) Write(ctx context.Context) error {
	conf, err := s.Config()
	if err != nil {
		return err
	}
	seed, err := s.Seed()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o700); err != nil {
		return err
	}
	if s.TLS != nil {
		if err := os.MkdirAll(filepath.Join(s.Dir, "tls"), 0o700); err != nil {
			return err
		}
		for src, dst := range map[string]string{s.TLS.CA: "ca.pem", s.TLS.Cert: "cert.pem", s.TLS.Key: "key.pem"} {
			data, err := os.ReadFile(src)
			if err != nil {
				return fmt.Errorf("slapd TLS: %w", err)
			}
			if err := os.WriteFile(filepath.Join(s.Dir, "tls", dst), data, 0o600); err != nil {
				return err
			}
		}
	}
	confFile := filepath.Join(s.Dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return err
	}
	seedFile := filepath.Join(s.Dir, "seed.ldif")
	if err := os.WriteFile(seedFile, []byte(seed), 0o600); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "data", "data.mdb")); err == nil {
		return s.addMissingInboxAccount(ctx, confFile, seed)
	}
	out, err := exec.CommandContext(ctx, slapBin("slapadd"), "-f", confFile, "-l", seedFile).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(filepath.Join(s.Dir, "data"))
		return fmt.Errorf("slapadd seed: %v: %s", err, out)
	}
	return nil
}

// addMissingInboxAccount adds the inbox's account, as the seed renders it,
// to a database loaded before the account existed (a deployment upgraded to
// an image with it). slapd is not running yet, so slapcat and slapadd work
// on the database directly. An account already there is left as it is: its
// password is the directory's to keep, as the worker's is.
func (s SlapdImage) addMissingInboxAccount(ctx context.Context, confFile, seed string) error {
	// A filter, not -s: slapcat 2.5 aborts on -s with a DN that is absent.
	out, err := exec.CommandContext(ctx, slapBin("slapcat"), "-f", confFile, "-a", "(entryDN="+LDAPInboxDN+")").CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapcat %s: %v: %s", LDAPInboxDN, err, out)
	}
	if strings.Contains(strings.ToLower(string(out)), "dn: "+strings.ToLower(LDAPInboxDN)) {
		return nil
	}
	var entry string
	for _, block := range strings.Split(seed, "\n\n") {
		block = strings.TrimLeft(block, "\n")
		for strings.HasPrefix(block, "#") { // the comment above the entry
			_, block, _ = strings.Cut(block, "\n")
		}
		if strings.EqualFold(strings.SplitN(block, "\n", 2)[0], "dn: "+LDAPInboxDN) {
			entry = block
		}
	}
	if entry == "" {
		return fmt.Errorf("slapd: the seed has no entry %s", LDAPInboxDN)
	}
	f := filepath.Join(s.Dir, "inbox-account.ldif")
	if err := os.WriteFile(f, []byte(strings.TrimRight(entry, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(f)
	if out, err := exec.CommandContext(ctx, slapBin("slapadd"), "-f", confFile, "-l", f).CombinedOutput(); err != nil {
		return fmt.Errorf("slapadd %s: %v: %s", LDAPInboxDN, err, out)
	}
	return nil
}

// LockedUserPassword is a userPassword value no password matches: the
// account exists and cannot bind.
const LockedUserPassword = "{CRYPT}!"

// SlapdBinary is the slapd executable the stack and the image run.
func SlapdBinary() string { return slapBin("slapd") }

// SSHA returns the {SSHA} (salted SHA-1) userPassword/rootpw value slapd
// verifies, with a fresh 8-byte salt.
func SSHA(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := sha1.New() //nolint:gosec // see the import
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...)), nil
}

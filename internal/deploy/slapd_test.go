package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
)

// buildCmd builds ./internal/cmd/<name> into a temporary directory.
func buildCmd(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, "./internal/cmd/"+name)
	cmd.Dir = repoDir(t)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The openldap image's entrypoint is slapdinit; the compose service builds
// that image.
func TestOpenLDAPImageEntrypointIsSlapdinit(t *testing.T) {
	p := loadProject(t)
	s := p.Services["openldap"]
	require.NotNil(t, s.Build)
	require.Equal(t, "openldap", s.Build.Target)
	df, err := os.ReadFile(filepath.Join(p.WorkingDir, "Dockerfile"))
	require.NoError(t, err)
	stage := regexp.MustCompile(`(?s)\nFROM debian:bookworm-slim AS openldap\n(.*?)(\nFROM |$)`).FindStringSubmatch(string(df))
	require.NotNil(t, stage, "Dockerfile target openldap is FROM debian:bookworm-slim")
	body := stage[1]
	require.Regexp(t, `apt-get install -y --no-install-recommends slapd`, body, "Debian's slapd")
	require.Contains(t, body, "COPY --from=build /out/slapdinit /usr/local/bin/slapdinit")
	require.Contains(t, body, `ENTRYPOINT ["/usr/local/bin/slapdinit", "-exec"]`)
	require.Contains(t, body, "COPY testdata/ldap /app/testdata/ldap")
	require.Contains(t, body, "COPY testdata/policy /app/testdata/policy")
	require.Regexp(t, `\./internal/cmd/slapdinit`, string(df), "the build stage builds slapdinit")
	require.Contains(t, body, "SLAPD_USER=openldap")
}

// slapdRun is a slapd started by slapdinit -exec on free ports.
type slapdRun struct {
	ldapURL, ldapsURL string
	tls               *tls.Config
	dir               string
	pid               int
	caFile            string
}

// startSlapdinit runs the openldap image's entrypoint here, with Debian's
// slapd, as the image would: certificates from the bootstrap job's certs
// step, passwords from the environment.
func startSlapdinit(t *testing.T, env map[string]string) (*slapdRun, error) {
	t.Helper()
	bin := buildCmd(t, "slapdinit")
	boot := buildCmd(t, "bootstrap")
	certs := t.TempDir()
	uid := os.Getuid()
	out, err := exec.Command(boot, "certs", "-dir", certs, "-ca-out", filepath.Join(certs, "public", "ca.pem"),
		"-for", fmt.Sprintf("openldap=%d", uid)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir := t.TempDir()
	ldapPort, ldapsPort := freePort(t), freePort(t)
	sr := &slapdRun{
		ldapURL:  fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort),
		ldapsURL: fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort),
		dir:      dir,
	}
	cmd := exec.Command(bin, "-exec", "-dir", dir, "-repo", repoDir(t), "-urls", sr.ldapURL+"/ "+sr.ldapsURL+"/")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"SLAPD_TLS_CA=" + filepath.Join(certs, "public", "ca.pem"),
		"SLAPD_TLS_CERT=" + filepath.Join(certs, "openldap", "cert.pem"),
		"SLAPD_TLS_KEY=" + filepath.Join(certs, "openldap", "key.pem"),
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logFile := filepath.Join(t.TempDir(), "slapd.log")
	lf, err := os.Create(logFile)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = lf, lf
	require.NoError(t, cmd.Start())
	sr.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// slapdinit replaced itself with slapd: this PID is the server's.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		lf.Close()
	})
	sr.caFile = filepath.Join(certs, "public", "ca.pem")
	caPEM, err := os.ReadFile(sr.caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	// The certificate names the compose service; here we dial 127.0.0.1
	// and check it against that name.
	sr.tls = &tls.Config{RootCAs: pool, ServerName: "openldap", MinVersion: tls.VersionTLS12}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logFile)
			exited <- err
			return nil, fmt.Errorf("slapdinit exited: %v: %s", err, log)
		default:
		}
		if c, err := ldap.DialURL(sr.ldapsURL, ldap.DialWithTLSConfig(sr.tls)); err == nil {
			c.Close()
			return sr, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(logFile)
	return nil, fmt.Errorf("slapd did not answer: %s", log)
}

func (r *slapdRun) dialS(t *testing.T) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(r.ldapsURL, ldap.DialWithTLSConfig(r.tls))
	require.NoError(t, err)
	c.SetTimeout(5 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

const (
	testRootPassword    = "root-pass-for-the-image-test"
	testServicePassword = "service-pass-for-the-image-test"
)

// The image's entrypoint, run here: the dev stack's generator (schema with
// the joineryManaged marker, access rules, seed) under Debian's slapd, with
// the operator's passwords and TLS. The worker binds as its service account
// over ldaps:// and StartTLS; the dev passwords, plain-text binds and the
// seed people's demo passwords do not work; the service account's access
// rules hold.
func TestOpenLDAPEntrypointRunsTheDevStackGenerator(t *testing.T) {
	if _, err := os.Stat(stack.SlapdBinary()); err != nil {
		t.Fatalf("slapd is not installed (make tools): %v", err)
	}
	r, err := startSlapdinit(t, map[string]string{
		"SLAPD_ROOT_PASSWORD": testRootPassword, "SLAPD_SERVICE_PASSWORD": testServicePassword,
	})
	require.NoError(t, err)

	// What slapd runs is the generator's output.
	conf, err := os.ReadFile(filepath.Join(r.dir, "slapd.conf"))
	require.NoError(t, err)
	want, err := stack.SlapdImage{RepoDir: repoDir(t), Dir: r.dir, RootPassword: testRootPassword,
		ServicePassword: testServicePassword, TLS: &stack.TLSFiles{CA: "x", Cert: "y", Key: "z"}}.Config()
	require.NoError(t, err)
	rootpw := regexp.MustCompile(`(?m)^rootpw .*$`)
	require.Equal(t, rootpw.ReplaceAllString(want, "rootpw X"), rootpw.ReplaceAllString(string(conf), "rootpw X"))
	require.Contains(t, string(conf), "include "+filepath.Join(repoDir(t), "testdata", "ldap", "joinery.schema"))
	require.NotContains(t, string(conf), stack.LDAPBindPassword, "no dev rootpw")
	require.Regexp(t, `(?m)^rootpw \{SSHA\}`, string(conf))

	// The worker's service account, over ldaps:// with the deployment CA.
	c := r.dialS(t)
	require.NoError(t, c.Bind(stack.LDAPServiceDN, testServicePassword))
	res, err := c.Search(ldap.NewSearchRequest("ou=people,"+stack.LDAPBaseDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases,
		0, 0, false, "(uid=ada.lovelace)", []string{"uid"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1, "the seed is loaded and the worker reads people")

	// Its access rules are the generator's: a seed person's password, which
	// Joinery did not create, cannot be set by the worker.
	_, err = c.PasswordModify(ldap.NewPasswordModifyRequest("uid=ada.lovelace,ou=people,"+stack.LDAPBaseDN, "", "taken-over-by-the-worker"))
	require.Error(t, err)
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights), "%v", err)
	// Nor can it read the admin entry's password or other service identities.
	res, err = c.Search(ldap.NewSearchRequest("ou=system,"+stack.LDAPBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"userPassword"}, nil))
	if err == nil {
		for _, e := range res.Entries {
			require.Empty(t, e.GetAttributeValue("userPassword"), e.DN)
		}
	}

	// StartTLS on ldap:// works too.
	plain, err := ldap.DialURL(r.ldapURL)
	require.NoError(t, err)
	defer plain.Close()
	plain.SetTimeout(5 * time.Second)
	// A simple bind in clear is refused before the password is checked.
	err = plain.Bind(stack.LDAPServiceDN, testServicePassword)
	require.Error(t, err)
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired), "%v", err)
	require.NoError(t, plain.StartTLS(r.tls))
	require.NoError(t, plain.Bind(stack.LDAPServiceDN, testServicePassword))

	// The operator's rootdn password works; none of the dev passwords does.
	c2 := r.dialS(t)
	require.NoError(t, c2.Bind(stack.LDAPBindDN, testRootPassword))
	for dn, pw := range map[string]string{
		stack.LDAPBindDN:    stack.LDAPBindPassword,
		stack.LDAPServiceDN: stack.LDAPServicePassword,
		"uid=ada.lovelace,ou=people," + stack.LDAPBaseDN: "dev-ada-pass",
	} {
		err := r.dialS(t).Bind(dn, pw)
		require.Error(t, err, "%s with its dev password", dn)
		require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials), "%s: %v", dn, err)
	}
	// slapd (slapdinit replaced itself with it) keeps neither password in
	// its environment, where anyone with its uid could read them.
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", r.pid))
	require.NoError(t, err)
	require.Contains(t, string(environ), "SLAPD_TLS_CERT=", "this is the process slapdinit started")
	require.NotContains(t, string(environ), testRootPassword)
	require.NotContains(t, string(environ), testServicePassword)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.pid))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(cmdline), "slapd\x00-f\x00"), "%q", cmdline)
	// The worker's bind password is in the database only as a salted hash.
	seed, err := os.ReadFile(filepath.Join(r.dir, "seed.ldif"))
	require.NoError(t, err)
	require.NotContains(t, string(seed), testServicePassword)
	require.NotContains(t, string(seed), "Ctou9AxhlNOevuMX5aKt3n+IkHdBi7wC", "the dev hash of the service account")
}

// With SLAPD_DEMO_PEOPLE the seed people keep their dev passwords (a trial);
// the operator's passwords still replace the dev ones.
func TestOpenLDAPEntrypointDemoPeople(t *testing.T) {
	r, err := startSlapdinit(t, map[string]string{
		"SLAPD_ROOT_PASSWORD": testRootPassword, "SLAPD_SERVICE_PASSWORD": testServicePassword, "SLAPD_DEMO_PEOPLE": "true",
	})
	require.NoError(t, err)
	require.NoError(t, r.dialS(t).Bind("uid=ada.lovelace,ou=people,"+stack.LDAPBaseDN, "dev-ada-pass"))
	require.Error(t, r.dialS(t).Bind(stack.LDAPServiceDN, stack.LDAPServicePassword))
}

// Bad input gets a clear error and starts nothing: missing, short, dev or
// equal passwords, half a TLS configuration.
func TestOpenLDAPEntrypointRefusesWeakOrMissingSecrets(t *testing.T) {
	bin := buildCmd(t, "slapdinit")
	for name, tc := range map[string]struct {
		env  []string
		want string
	}{
		"no root password":  {[]string{"SLAPD_SERVICE_PASSWORD=" + testServicePassword}, "SLAPD_ROOT_PASSWORD (or SLAPD_ROOT_PASSWORD_FILE) is required"},
		"no service":        {[]string{"SLAPD_ROOT_PASSWORD=" + testRootPassword}, "SLAPD_SERVICE_PASSWORD (or SLAPD_SERVICE_PASSWORD_FILE) is required"},
		"short":             {[]string{"SLAPD_ROOT_PASSWORD=short", "SLAPD_SERVICE_PASSWORD=" + testServicePassword}, "root password is shorter than 16"},
		"dev password":      {[]string{"SLAPD_ROOT_PASSWORD=" + testRootPassword, "SLAPD_SERVICE_PASSWORD=dev-joinery-worker"}, "service account password is a dev stack password"},
		"same":              {[]string{"SLAPD_ROOT_PASSWORD=" + testRootPassword, "SLAPD_SERVICE_PASSWORD=" + testRootPassword}, "must differ"},
		"half TLS":          {[]string{"SLAPD_ROOT_PASSWORD=" + testRootPassword, "SLAPD_SERVICE_PASSWORD=" + testServicePassword, "SLAPD_TLS_CA=/x"}, "all or none"},
		"ldaps without TLS": {[]string{"SLAPD_ROOT_PASSWORD=" + testRootPassword, "SLAPD_SERVICE_PASSWORD=" + testServicePassword}, "ldaps:// in the listeners needs"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.CommandContext(context.Background(), bin, "-dir", dir, "-repo", repoDir(t))
			cmd.Env = tc.env
			if name != "ldaps without TLS" {
				cmd.Env = append(cmd.Env, "SLAPD_URLS=ldap://127.0.0.1:1/")
			}
			out, err := cmd.CombinedOutput()
			require.Error(t, err)
			require.Contains(t, string(out), tc.want)
			entries, _ := os.ReadDir(dir)
			require.Empty(t, entries, "nothing written")
			for _, e := range tc.env {
				if v := strings.SplitN(e, "=", 2)[1]; len(v) > 8 {
					require.NotContains(t, string(out), v, "the error does not echo a secret")
				}
			}
		})
	}
}

// The worker's own directory connector, configured from the compose
// worker's environment (only the URL's host mapped to this machine), works
// against the openldap image's entrypoint started with the compose openldap
// service's environment: ldaps:// verified with the deployment CA, bound as
// the service account with the one password both services take from
// JOINERY_LDAP_BIND_PASSWORD.
func TestComposeWorkerDirectoryConfigurationWorksAgainstTheImage(t *testing.T) {
	p := loadProject(t)
	lenv := map[string]string{}
	for _, k := range []string{"SLAPD_ROOT_PASSWORD", "SLAPD_SERVICE_PASSWORD", "SLAPD_DEMO_PEOPLE"} {
		v := p.Services["openldap"].Environment[k]
		require.NotNil(t, v, k)
		lenv[k] = *v
	}
	r, err := startSlapdinit(t, lenv)
	require.NoError(t, err)
	wenv := p.Services["worker"].Environment
	require.Equal(t, "ldaps://openldap:636", *wenv["JOINERY_LDAP_URL"])
	cfg, err := config.Load(func(k string) string {
		switch k {
		case "JOINERY_LDAP_URL":
			return r.ldapsURL
		case "JOINERY_LDAP_CA_FILE":
			return filepath.Join(filepath.Dir(r.caFile), "ca.pem")
		}
		if v, ok := wenv[k]; ok && v != nil {
			return *v
		}
		return ""
	})
	require.NoError(t, err)
	dir, err := directory.New(run.DirectoryConfig(cfg))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	taken, err := dir.Taken(ctx, []string{"ada.lovelace", "nobody.here"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"ada.lovelace": true, "nobody.here": false}, taken)
	// The seed people are locked unless the operator asked for the demo.
	_, err = dir.Authenticate(ctx, "ada.lovelace", "dev-ada-pass")
	require.Error(t, err)
}

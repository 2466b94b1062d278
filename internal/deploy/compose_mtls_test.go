package deploy

// Mutual TLS to Temporal's frontend in docker-compose.yml.
//
// The adversary: anything on the backend network that is not a Temporal
// client — a compromised HRIS, Mailpit, Prometheus or Grafana container, or
// Vault or slapd with their own server keys — dialling temporal:7233 to
// start, signal or terminate joiners. Without a client certificate from the
// deployment's client CA the frontend's handshake refuses it. A second
// adversary is a compromised Temporal client (say the UI) that tries
// Temporal's internode listeners with its client key, bypassing the
// frontend: those trust only the server CA, under which no client
// certificate is issued, and refuse it. The tests below try each of these.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
)

// imageUID is the uid each Temporal client's image runs as, which must own
// its key: Joinery's images are distroless :nonroot (65532, the
// Dockerfile's base); temporalio/ui 2.49.1 and temporalio/admin-tools
// 1.31.2 run as their `temporal` user, uid 1000 (`adduser -u 1000 ...` and
// `USER temporal` in both images' Dockerfiles).
func imageUID(t *testing.T, s types.ServiceConfig) int {
	t.Helper()
	switch {
	case s.Build != nil:
		return 65532
	case strings.HasPrefix(s.Image, "temporalio/ui:"), strings.HasPrefix(s.Image, "temporalio/admin-tools:"):
		return 1000
	}
	t.Fatalf("%s: unknown image %q, whose uid this test does not know", s.Name, s.Image)
	return -1
}

// clientCertEnv names the variables through which a Temporal client of
// this kind reads its client certificate and key.
func clientCertEnv(s types.ServiceConfig) (cert, key string) {
	switch {
	case strings.HasPrefix(s.Image, "temporalio/ui:"):
		return "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY" // the UI server's config template
	case strings.HasPrefix(s.Image, "temporalio/admin-tools:"):
		return "TEMPORAL_TLS_CERT_FILE", "TEMPORAL_TLS_KEY_FILE" // deploy/temporal/register.sh
	}
	return "JOINERY_TEMPORAL_TLS_CERT_FILE", "JOINERY_TEMPORAL_TLS_KEY_FILE"
}

// temporalClients are the services that talk to Temporal's frontend: they
// name a Temporal address and share a network with the temporal service
// (the codec server carries the shared Temporal settings but sits on the
// edge network only and never dials).
func temporalClients(t *testing.T, p *types.Project) []string {
	t.Helper()
	tnets := p.Services["temporal"].Networks
	var out []string
	for name, s := range p.Services {
		if name == "temporal" {
			continue
		}
		_, a := s.Environment["JOINERY_TEMPORAL_ADDRESS"]
		_, b := s.Environment["TEMPORAL_ADDRESS"]
		if !a && !b {
			continue
		}
		for n := range s.Networks {
			if _, ok := tnets[n]; ok {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func envOf(s types.ServiceConfig, k string) string {
	if v, ok := s.Environment[k]; ok && v != nil {
		return *v
	}
	return ""
}

// clientMount is where a Temporal client's certificate comes from: the
// named volume mounted at the directory of its certificate and key.
type clientMount struct {
	service, volume, target, certFile, keyFile string
}

// clientMounts checks that each Temporal client reads its certificate and
// key from one directory that is a named volume of its own, read-only,
// and returns those volumes.
func clientMounts(t *testing.T, p *types.Project) map[string]clientMount {
	t.Helper()
	out := map[string]clientMount{}
	for _, name := range temporalClients(t, p) {
		s := p.Services[name]
		ce, ke := clientCertEnv(s)
		cert, key := envOf(s, ce), envOf(s, ke)
		require.NotEmpty(t, cert, "%s talks to Temporal, whose frontend requires a client certificate: set %s", name, ce)
		require.NotEmpty(t, key, "%s: set %s", name, ke)
		dir := filepath.Dir(cert)
		require.Equal(t, dir, filepath.Dir(key), "%s: certificate and key in one directory", name)
		var m *clientMount
		for _, v := range s.Volumes {
			if v.Target == dir {
				require.Equal(t, types.VolumeTypeVolume, v.Type, "%s: %s is a named volume", name, dir)
				require.True(t, v.ReadOnly, "%s: its client key is mounted read-only", name)
				m = &clientMount{service: name, volume: v.Source, target: dir, certFile: cert, keyFile: key}
			}
		}
		require.NotNil(t, m, "%s: nothing is mounted at %s", name, dir)
		out[name] = *m
	}
	return out
}

// Every service that talks to Temporal has a client certificate in a volume
// that no other service mounts (but the certs job that writes it), issued
// for its name and owned by the uid its image runs as; no Temporal client
// mounts another's volume or the servers' key volume.
func TestComposeEveryTemporalClientMountsOnlyItsOwnCertificate(t *testing.T) {
	p := loadProject(t)
	clients := temporalClients(t, p)
	for _, want := range []string{"worker", "sweeper", "temporal-ui", "temporal-namespace"} {
		require.Contains(t, clients, want, "%s talks to Temporal", want)
	}
	require.NotContains(t, clients, "codec", "the codec server never dials Temporal")
	mounts := clientMounts(t, p)

	job := p.Services["certs"]
	cmd := job.Command
	flagValues := func(flag string) []string {
		var v []string
		for i := 0; i+1 < len(cmd); i++ {
			if cmd[i] == flag {
				v = append(v, cmd[i+1])
			}
		}
		return v
	}
	clientDirs := flagValues("-client-dir")
	require.Len(t, clientDirs, 1, "the certs job names where client certificates go")
	issued := map[string]string{}
	for _, c := range flagValues("-client") {
		n, uid, ok := strings.Cut(c, "=")
		require.True(t, ok, c)
		issued[n] = uid
	}
	jobTargets := map[string]string{}
	for _, v := range job.Volumes {
		jobTargets[v.Source] = v.Target
	}

	volumeOwner := map[string]string{}
	for _, name := range clients {
		m := mounts[name]
		require.NotEqual(t, "certs", m.volume, "%s: not in the servers' key volume", name)
		require.NotEqual(t, "ca", m.volume, "%s: the CA volume holds no keys", name)
		if other, dup := volumeOwner[m.volume]; dup {
			t.Fatalf("%s and %s share the client certificate volume %s", other, name, m.volume)
		}
		volumeOwner[m.volume] = name
		// The job writes it where this client reads it: <client-dir>/<cn>.
		target, ok := jobTargets[m.volume]
		require.True(t, ok, "%s: the certs job does not write volume %s", name, m.volume)
		require.Equal(t, clientDirs[0], filepath.Dir(target), "%s", name)
		cn := filepath.Base(target)
		uid, ok := issued[cn]
		require.True(t, ok, "%s: the certs job issues no -client %s", name, cn)
		require.Equal(t, fmt.Sprint(imageUID(t, p.Services[name])), strings.Split(uid, ":")[0], "%s: key owned by its image's uid", name)
		require.Equal(t, name, cn, "%s: its certificate names it", name)
		require.Equal(t, "cert.pem", filepath.Base(m.certFile))
		require.Equal(t, "key.pem", filepath.Base(m.keyFile))
		dep, ok := p.Services[name].DependsOn["certs"]
		if ok {
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, dep.Condition)
		}
	}
	// Nobody else mounts a client's volume, and no client mounts the
	// servers' keys.
	for svc, s := range p.Services {
		for _, v := range s.Volumes {
			if owner, ok := volumeOwner[v.Source]; ok {
				require.Contains(t, []string{owner, "certs"}, svc, "%s mounts %s's client key (%s)", svc, owner, v.Source)
			}
			if v.Source == "certs" {
				require.NotContains(t, clients, svc, "%s, a Temporal client, mounts the servers' keys", svc)
			}
		}
	}
	// Every issued client certificate is used by its service.
	for cn := range issued {
		_, ok := mounts[cn]
		require.True(t, ok, "the certs job issues a client certificate for %s, which is no Temporal client", cn)
	}
	// Joinery's processes read theirs through the configuration table.
	for _, name := range clients {
		s := p.Services[name]
		if s.Build == nil {
			continue
		}
		cfg, err := config.Load(func(k string) string { return envOf(s, k) })
		require.NoError(t, err, name)
		require.Equal(t, mounts[name].certFile, cfg.TemporalTLSCertFile, name)
		require.Equal(t, mounts[name].keyFile, cfg.TemporalTLSKeyFile, name)
		require.Equal(t, "/ca/ca.pem", cfg.TemporalTLSCAFile, name)
	}
}

// renderTemporalConfig renders the embedded configuration template of the
// temporal-server release compose pins (the image runs it with no config
// file) with the temporal service's environment, as the server itself
// would, and returns its global.tls section.
func renderTemporalConfig(t *testing.T, p *types.Project, env map[string]string) map[string]any {
	t.Helper()
	_, tag, _ := strings.Cut(p.Services["temporal"].Image, ":")
	cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	require.NoError(t, err)
	file := filepath.Join(strings.TrimSpace(string(cache)), "go.temporal.io", "server@v"+tag, "common", "config", "config_template_embedded.yaml")
	src, err := os.ReadFile(file)
	require.NoError(t, err, "the configuration template of temporal-server %s (make tools builds it from this module)", tag)
	// The sprig functions the template uses, with sprig's semantics.
	funcs := template.FuncMap{
		"env": func(k string) string { return env[k] },
		"default": func(d any, v ...any) any {
			if len(v) == 0 || v[0] == nil || v[0] == "" {
				return d
			}
			return v[0]
		},
		"lower": strings.ToLower,
		"trim":  strings.TrimSpace,
		"split": func(sep, s string) []string { return strings.Split(s, sep) },
	}
	tpl, err := template.New("temporal").Funcs(funcs).Parse(string(src))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, tpl.Execute(&out, nil))
	var doc struct {
		Global struct {
			TLS map[string]any `yaml:"tls"`
		} `yaml:"global"`
	}
	require.NoError(t, yaml.Unmarshal(out.Bytes(), &doc), "%s", out.String())
	return doc.Global.TLS
}

func dig(t *testing.T, m map[string]any, path ...string) any {
	t.Helper()
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		require.True(t, ok, "%v: no %s", path, k)
		cur = mm[k]
	}
	return cur
}

// The frontend requires client certificates: the pinned release's own
// template, rendered with the temporal service's environment, sets
// requireClientAuth on the frontend with the client CA (and the server CA,
// for Temporal's own system worker) as its client CAs, and on internode
// with the server CA alone.
func TestComposeTemporalFrontendRequiresClientCertificates(t *testing.T) {
	p := loadProject(t)
	env := map[string]string{}
	for k, v := range p.Services["temporal"].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	tlsCfg := renderTemporalConfig(t, p, env)
	require.Equal(t, true, dig(t, tlsCfg, "frontend", "server", "requireClientAuth"))
	require.Equal(t, []any{"/certs/client-ca.pem", "/ca/ca.pem"}, dig(t, tlsCfg, "frontend", "server", "clientCaFiles"))
	require.Equal(t, "/certs/temporal/cert.pem", dig(t, tlsCfg, "frontend", "server", "certFile"))
	require.Equal(t, true, dig(t, tlsCfg, "internode", "server", "requireClientAuth"))
	require.Equal(t, []any{"/ca/ca.pem"}, dig(t, tlsCfg, "internode", "server", "clientCaFiles"),
		"internode trusts the server CA only: no client certificate opens it")
	// The client CA lies in the certs volume the server mounts, written by
	// the certs job beside ca.pem.
	var mounted bool
	for _, v := range p.Services["temporal"].Volumes {
		if v.Source == "certs" && v.Target == "/certs" {
			mounted = true
		}
	}
	require.True(t, mounted)

	// Control: the same template without the variable leaves the frontend
	// open to any client, which is what this deployment must not do.
	delete(env, "TEMPORAL_TLS_REQUIRE_CLIENT_AUTH")
	require.Equal(t, false, dig(t, renderTemporalConfig(t, p, env), "frontend", "server", "requireClientAuth"))
}

// certsJob is a run of the compose certs job's own command line on this
// machine: each container path under root.
type certsJob struct {
	root, dir, ca, clientCA string
	// clientDir holds a client's certificate and key by name; serverDir a
	// server's.
	clientDir, serverDir map[string]string
}

// runComposeCertsJob runs the certs job as compose does, its container
// paths under a temporary root. As root (the CI here) the uids are the
// file's own, so ownership is checked for real; otherwise they become this
// user's.
func runComposeCertsJob(t *testing.T) *certsJob {
	t.Helper()
	p := loadProject(t)
	cmd := p.Services["certs"].Command
	require.Equal(t, "certs", cmd[0])
	root := t.TempDir()
	args := []string{"certs"}
	var clientParent string
	j := &certsJob{root: root, clientDir: map[string]string{}, serverDir: map[string]string{}}
	for i := 1; i < len(cmd); i++ {
		a := cmd[i]
		if strings.HasPrefix(a, "/") {
			a = filepath.Join(root, a)
		}
		if os.Getuid() != 0 && i > 0 && slices.Contains([]string{"-for", "-peer", "-client"}, cmd[i-1]) {
			n, _, _ := strings.Cut(a, "=")
			a = fmt.Sprintf("%s=%d:%d", n, os.Getuid(), os.Getgid())
		}
		switch cmd[i-1] {
		case "-dir":
			j.dir = a
		case "-client-dir":
			clientParent = a
		}
		args = append(args, a)
	}
	require.NotEmpty(t, j.dir)
	require.NotEmpty(t, clientParent)
	for i := 1; i+1 < len(cmd); i++ {
		n, _, _ := strings.Cut(cmd[i+1], "=")
		switch cmd[i] {
		case "-client":
			j.clientDir[n] = filepath.Join(clientParent, n)
		case "-for", "-peer":
			j.serverDir[n] = filepath.Join(j.dir, n)
		}
	}
	out, err := exec.Command(buildCmd(t, "bootstrap"), args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	j.ca, j.clientCA = filepath.Join(j.dir, "ca.pem"), filepath.Join(j.dir, "client-ca.pem")
	return j
}

func pool(t *testing.T, files ...string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.True(t, p.AppendCertsFromPEM(b), f)
	}
	return p
}

func leaf(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, file)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err, file)
	return c
}

// The certs job, run with compose's command line: every client certificate
// has exactly the clientAuth usage, its service's name as CN and URI SAN
// and no DNS name, chains to the client CA and not to the server CA; its
// key is 0400 in a 0700 directory owned by its image's uid. Vault's and
// slapd's certificates are server-only; Temporal's is server and client
// (its internode mTLS).
func TestComposeCertsJobIssuesClientCertificates(t *testing.T) {
	p := loadProject(t)
	j := runComposeCertsJob(t)
	servers, clients := pool(t, j.ca), pool(t, j.clientCA)
	mounts := clientMounts(t, p)
	require.NotEmpty(t, j.clientDir)
	for name, dir := range j.clientDir {
		c := leaf(t, filepath.Join(dir, "cert.pem"))
		require.Equal(t, name, c.Subject.CommonName)
		require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage, name)
		require.Len(t, c.URIs, 1, name)
		require.Equal(t, "spiffe://joinery.deployment/client/"+name, c.URIs[0].String())
		require.Empty(t, c.DNSNames, name)
		require.Empty(t, c.IPAddresses, name)
		_, err := c.Verify(x509.VerifyOptions{Roots: clients, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		require.NoError(t, err, name)
		_, err = c.Verify(x509.VerifyOptions{Roots: servers, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		require.Error(t, err, "%s: not under the server CA, which internode trusts", name)
		_, err = c.Verify(x509.VerifyOptions{Roots: clients, DNSName: name})
		require.Error(t, err, "%s: no server certificate", name)
		_, err = tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
		require.NoError(t, err, name)

		uid := imageUID(t, p.Services[mounts[name].service])
		if os.Getuid() != 0 {
			uid = os.Getuid()
		}
		for f, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "key.pem"): 0o400, filepath.Join(dir, "cert.pem"): 0o444} {
			st, err := os.Stat(f)
			require.NoError(t, err)
			require.Equal(t, mode, st.Mode()&(os.ModeDir|os.ModePerm), f)
			require.Equal(t, uint32(uid), st.Sys().(*syscall.Stat_t).Uid, f)
		}
	}
	for name, dir := range j.serverDir {
		c := leaf(t, filepath.Join(dir, "cert.pem"))
		want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if name == "temporal" {
			want = append(want, x509.ExtKeyUsageClientAuth)
		}
		require.Equal(t, want, c.ExtKeyUsage, name)
		_, err := c.Verify(x509.VerifyOptions{Roots: servers, DNSName: name})
		require.NoError(t, err, name)
	}
	require.Contains(t, j.serverDir, "temporal")
	require.Contains(t, j.serverDir, "vault")

	// The job runs at every `up`: a second run keeps them all.
	before, err := os.ReadFile(filepath.Join(j.clientDir["worker"], "cert.pem"))
	require.NoError(t, err)
	out, err := exec.Command(buildCmd(t, "bootstrap"), rerunArgs(t, j)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "certificates current")
	after, err := os.ReadFile(filepath.Join(j.clientDir["worker"], "cert.pem"))
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// rerunArgs is the job's command line as runComposeCertsJob ran it.
func rerunArgs(t *testing.T, j *certsJob) []string {
	t.Helper()
	p := loadProject(t)
	cmd := p.Services["certs"].Command
	args := []string{"certs"}
	for i := 1; i < len(cmd); i++ {
		a := cmd[i]
		if strings.HasPrefix(a, "/") {
			a = filepath.Join(j.root, a)
		}
		if os.Getuid() != 0 && slices.Contains([]string{"-for", "-peer", "-client"}, cmd[i-1]) {
			n, _, _ := strings.Cut(a, "=")
			a = fmt.Sprintf("%s=%d:%d", n, os.Getuid(), os.Getgid())
		}
		args = append(args, a)
	}
	return args
}

// composeClientConfig is a Joinery process's configuration as compose gives
// it, with the container paths of its CA and client certificate mapped to
// the job's files and the address pointed at addr (whose certificate is
// checked for the name "temporal", the compose host name).
func composeClientConfig(t *testing.T, p *types.Project, j *certsJob, service, addr string) config.Config {
	t.Helper()
	s := p.Services[service]
	m := clientMounts(t, p)[service]
	mapped := map[string]string{
		"JOINERY_TEMPORAL_ADDRESS":         addr,
		"JOINERY_TEMPORAL_TLS_SERVER_NAME": "temporal",
		"JOINERY_TEMPORAL_TLS_CA_FILE":     j.ca,
		"JOINERY_TEMPORAL_TLS_CERT_FILE":   filepath.Join(j.clientDir[service], filepath.Base(m.certFile)),
		"JOINERY_TEMPORAL_TLS_KEY_FILE":    filepath.Join(j.clientDir[service], filepath.Base(m.keyFile)),
		"JOINERY_CODEC_KEYS_FILE":          "",
	}
	cfg, err := config.Load(func(k string) string {
		if v, ok := mapped[k]; ok {
			return v
		}
		return envOf(s, k)
	})
	require.NoError(t, err, service)
	require.Equal(t, "/ca/ca.pem", envOf(s, "JOINERY_TEMPORAL_TLS_CA_FILE"), service)
	return cfg
}

// tlsOptions is the TLS configuration run.ClientOptions (what every Joinery
// process dials with) builds from cfg.
func tlsOptions(t *testing.T, cfg config.Config) *tls.Config {
	t.Helper()
	opts, err := run.ClientOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	return opts.ConnectionOptions.TLS
}

// mtlsServer listens like Temporal's frontend in compose (the temporal
// certificate, RequireAndVerifyClientCert against the given client CAs)
// and answers "ok" to a client whose handshake it accepted.
func mtlsServer(t *testing.T, certFile, keyFile string, clientCAs *x509.CertPool) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr with tc and reports whether the server accepted the
// handshake (in TLS 1.3 the client learns of a refused certificate only on
// its first read).
func handshake(addr string, tc *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc.Clone())
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ok" {
		return fmt.Errorf("unexpected answer %q", buf)
	}
	return nil
}

// A TLS server configured like the compose frontend (RequireAndVerifyClientCert
// with the CAs the temporal service names) accepts what run.ClientOptions
// builds from each Joinery service's compose environment with the job's
// certificate, and each other client's certificate; it refuses a client
// without a certificate, one with a certificate from another deployment's
// CA, and Vault's and slapd's server keys presented as client certificates.
// A server configured like Temporal's internode listeners refuses every
// client certificate and admits only Temporal's own.
func TestComposeFrontendHandshakeNeedsAJobIssuedClientCertificate(t *testing.T) {
	p := loadProject(t)
	j := runComposeCertsJob(t)
	tenv := p.Services["temporal"].Environment
	local := strings.NewReplacer("/certs/", j.dir+"/", "/ca/ca.pem", j.ca)
	front := mtlsServer(t, local.Replace(*tenv["TEMPORAL_TLS_FRONTEND_CERT"]), local.Replace(*tenv["TEMPORAL_TLS_FRONTEND_KEY"]),
		pool(t, local.Replace(*tenv["TEMPORAL_TLS_CLIENT1_CA_CERT"]), local.Replace(*tenv["TEMPORAL_TLS_CLIENT2_CA_CERT"])))
	internode := mtlsServer(t, local.Replace(*tenv["TEMPORAL_TLS_SERVER_CERT"]), local.Replace(*tenv["TEMPORAL_TLS_SERVER_KEY"]),
		pool(t, local.Replace(*tenv["TEMPORAL_TLS_SERVER_CA_CERT"])))

	withCert := func(cfg config.Config, dir string) config.Config {
		cfg.TemporalTLSCertFile, cfg.TemporalTLSKeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		return cfg
	}
	base := composeClientConfig(t, p, j, "worker", front)
	for _, name := range temporalClients(t, p) {
		var cfg config.Config
		if p.Services[name].Build != nil {
			cfg = composeClientConfig(t, p, j, name, front)
		} else {
			cfg = withCert(base, j.clientDir[name])
		}
		require.NoError(t, handshake(front, tlsOptions(t, cfg)), "%s with its own certificate", name)
		cfg.TemporalAddress = internode
		require.Error(t, handshake(internode, tlsOptions(t, cfg)), "%s's client certificate must not open internode", name)
	}

	// No client certificate: refused.
	none := base
	none.TemporalTLSCertFile, none.TemporalTLSKeyFile = "", ""
	require.Error(t, handshake(front, tlsOptions(t, none)))

	// A client certificate of another deployment (another run of the job):
	// refused.
	other := runComposeCertsJob(t)
	require.Error(t, handshake(front, tlsOptions(t, withCert(base, other.clientDir["worker"]))))

	// A server's key as a client certificate (a compromised Vault or slapd
	// container holds its own): refused, it lacks the clientAuth usage.
	for _, srv := range []string{"vault", "openldap"} {
		require.Error(t, handshake(front, tlsOptions(t, withCert(base, j.serverDir[srv]))), srv)
	}

	// Temporal's own certificate opens both (its system worker dials the
	// frontend, its nodes dial each other).
	peer := withCert(base, j.serverDir["temporal"])
	require.NoError(t, handshake(front, tlsOptions(t, peer)))
	peer.TemporalAddress = internode
	require.NoError(t, handshake(internode, tlsOptions(t, peer)))
}

// checkComposeTemporalMTLS dials the real temporal-server that
// TestComposeTemporalServesTLSFromItsEnvironment started with the compose
// environment (frontend at addr, internode ports in env) through the SDK
// with the configuration each Joinery service gets: with its job-issued
// certificate it connects, without one, or with another deployment's or a
// server's, it does not; a client key does not open the history service's
// internode port.
func checkComposeTemporalMTLS(t *testing.T, addr string, j *certsJob, env []string) {
	t.Helper()
	p := loadProject(t)
	dial := func(cfg config.Config) error {
		opts, err := run.ClientOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		opts.Logger = quietLogger{}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := client.DialContext(ctx, opts)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}
	for _, svc := range []string{"worker", "sweeper", "starter"} {
		if _, ok := p.Services[svc]; !ok {
			continue
		}
		require.NoError(t, dial(composeClientConfig(t, p, j, svc, addr)), "%s with its compose configuration", svc)
	}
	base := composeClientConfig(t, p, j, "worker", addr)
	none := base
	none.TemporalTLSCertFile, none.TemporalTLSKeyFile = "", ""
	err := dial(none)
	require.Error(t, err, "no client certificate")
	t.Logf("without a client certificate: %v", err)
	other := runComposeCertsJob(t)
	foreign := base
	foreign.TemporalTLSCertFile = filepath.Join(other.clientDir["worker"], "cert.pem")
	foreign.TemporalTLSKeyFile = filepath.Join(other.clientDir["worker"], "key.pem")
	require.Error(t, dial(foreign), "another deployment's client certificate")
	vault := base
	vault.TemporalTLSCertFile = filepath.Join(j.serverDir["vault"], "cert.pem")
	vault.TemporalTLSKeyFile = filepath.Join(j.serverDir["vault"], "key.pem")
	require.Error(t, dial(vault), "Vault's server key as a client certificate")

	// The history service's internode port, with the worker's client key.
	var history string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HISTORY_GRPC_PORT="); ok {
			history = "127.0.0.1:" + v
		}
	}
	require.NotEmpty(t, history)
	tc := tlsOptions(t, base)
	tc.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", history, tc)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// The server refuses the certificate after the client's half of
		// the handshake; the client sees it on its first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	require.Error(t, err, "a client key must not open internode")
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "refused, not silent")
}

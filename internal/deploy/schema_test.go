package deploy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// privatePostgres runs a PostgreSQL of this test's own (never the cluster's
// or anything shared) as the postgres OS user on a free loopback port, with
// a role `temporal` that may create databases, as the postgres image makes
// POSTGRES_USER. It returns the port and a psql runner; the server is
// stopped by PID at cleanup.
func privatePostgres(t *testing.T, password string) (int, func(db, sql string) string) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL is not installed (make tools)")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	u, err := user.Lookup("postgres")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	dir := t.TempDir()
	// The postgres user must reach its directory through the test's.
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		require.NoError(t, os.Mkdir(d, 0o700))
		require.NoError(t, os.Chown(d, uid, gid))
	}
	run := func(name string, args ...string) string {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = cred
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %v: %s", name, args, out)
		return string(out)
	}
	run("initdb", "-D", data, "-U", "postgres", "--auth-local=peer", "--auth-host=scram-sha-256")
	port := freePort(t)
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", fmt.Sprint(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1")
	srv.SysProcAttr = cred
	logf, err := os.Create(filepath.Join(t.TempDir(), "pg.log"))
	require.NoError(t, err)
	srv.Stdout, srv.Stderr = logf, logf
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(filepath.Join(bin, "pg_isready"), "-h", sock, "-p", fmt.Sprint(port))
		cmd.SysProcAttr = cred
		if cmd.Run() == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "postgres did not start")
		time.Sleep(200 * time.Millisecond)
	}
	psql := func(db, sql string) string {
		return run("psql", "-h", sock, "-p", fmt.Sprint(port), "-U", "postgres", "-d", db, "-tAq", "-v", "ON_ERROR_STOP=1", "-c", sql)
	}
	psql("postgres", "CREATE ROLE temporal LOGIN CREATEDB PASSWORD '"+password+"'")
	return port, psql
}

// schemaDir finds the schema files of bin/temporal-sql-tool's own release
// in the module cache (scripts/tools.sh builds the tool from that module),
// as the admin-tools image carries them in /etc/temporal/schema.
func schemaDir(t *testing.T, tool string) string {
	t.Helper()
	out, err := exec.Command(tool, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	v := regexp.MustCompile(`[0-9]+\.[0-9]+\.[0-9]+`).FindString(string(out))
	require.NotEmpty(t, v, "%s", out)
	cache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	require.NoError(t, err)
	dir := filepath.Join(strings.TrimSpace(string(cache)), "go.temporal.io", "server@v"+v, "schema")
	_, err = os.Stat(filepath.Join(dir, "postgresql", "v12", "temporal", "versioned"))
	require.NoError(t, err, "the schema of temporal-sql-tool %s (make tools)", v)
	return dir
}

// The compose job's setup-schema.sh, run with the real temporal-sql-tool
// against a real PostgreSQL with the variables compose gives it: the first
// run creates both databases at the newest schema version, the second (the
// job runs at every `up`) only finds them current, and a wrong password
// fails the job.
func TestTemporalSchemaScriptAgainstARealPostgres(t *testing.T) {
	p := loadProject(t)
	job := p.Services["temporal-schema"]
	tool := filepath.Join(repoDir(t), "bin", "temporal-sql-tool")
	if _, err := os.Stat(tool); err != nil {
		t.Fatalf("bin/temporal-sql-tool missing (make tools): %v", err)
	}
	schema := schemaDir(t, tool)
	const password = "pg-password-for-the-schema-test"
	port, psql := privatePostgres(t, password)
	run := func(pw string) (string, error) {
		cmd := exec.Command("/bin/sh", filepath.Join(p.WorkingDir, "deploy", "temporal", "setup-schema.sh"))
		cmd.Env = []string{"PATH=" + filepath.Join(repoDir(t), "bin") + ":/usr/bin:/bin",
			"SQL_PLUGIN=" + *job.Environment["SQL_PLUGIN"], "SQL_HOST=127.0.0.1", "SQL_PORT=" + fmt.Sprint(port),
			"SQL_USER=" + *job.Environment["SQL_USER"], "SQL_PASSWORD=" + pw, "TEMPORAL_SCHEMA_DIR=" + schema}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(password)
	require.NoError(t, err, "%s", out)
	require.Contains(t, out, "temporal created")
	require.Contains(t, out, "temporal_visibility created")

	newest := func(dir string) string {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		best := ""
		for _, e := range entries {
			v := strings.TrimPrefix(e.Name(), "v")
			if best == "" || versionLess(best, v) {
				best = v
			}
		}
		return best
	}
	for db, sub := range map[string]string{"temporal": "temporal", "temporal_visibility": "visibility"} {
		got := strings.TrimSpace(psql(db, "SELECT curr_version FROM schema_version"))
		require.Equal(t, newest(filepath.Join(schema, "postgresql", "v12", sub, "versioned")), got, db)
	}

	out, err = run(password)
	require.NoError(t, err, "%s", out)
	require.Contains(t, out, "temporal is current")
	require.Contains(t, out, "temporal_visibility is current")
	require.NotContains(t, out, "created")

	out, err = run("wrong-password")
	require.Error(t, err, "%s", out)
	require.NotContains(t, out, password)
}

// versionLess compares dotted version numbers (1.10 after 1.9).
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// The compose file's Temporal server configuration, run: the real
// temporal-server of the release compose pins (bin/temporal-server; the
// image runs the same binary with no config file, so the embedded template
// reads these variables) started with the temporal service's environment —
// only container paths, host names and ports mapped to this machine — on a
// schema made by setup-schema.sh. Its frontend serves TLS for the name
// "temporal" (so do its own nodes, or it would not come up), register.sh
// registers Joinery's namespace over that TLS, and a plain-text client gets
// nowhere.
func TestComposeTemporalServesTLSFromItsEnvironment(t *testing.T) {
	p := loadProject(t)
	server := filepath.Join(repoDir(t), "bin", "temporal-server")
	tool := filepath.Join(repoDir(t), "bin", "temporal-sql-tool")
	for _, b := range []string{server, tool} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s missing (make tools): %v", b, err)
		}
	}
	out, err := exec.Command(server, "--version").CombinedOutput()
	require.NoError(t, err)
	_, tag, _ := strings.Cut(p.Services["temporal"].Image, ":")
	require.Contains(t, string(out), tag, "compose pins the server release tested here")
	_, adminTag, _ := strings.Cut(p.Services["temporal-schema"].Image, ":")
	require.Equal(t, tag, adminTag, "admin-tools of the same release")

	const password = "pg-password-for-the-server-test"
	pgPort, _ := privatePostgres(t, password)
	schema := schemaDir(t, tool)
	job := p.Services["temporal-schema"]
	cmd := exec.Command("/bin/sh", filepath.Join(p.WorkingDir, "deploy", "temporal", "setup-schema.sh"))
	cmd.Env = []string{"PATH=" + filepath.Join(repoDir(t), "bin") + ":/usr/bin:/bin", "SQL_PLUGIN=" + *job.Environment["SQL_PLUGIN"],
		"SQL_HOST=127.0.0.1", "SQL_PORT=" + fmt.Sprint(pgPort), "SQL_USER=temporal", "SQL_PASSWORD=" + password, "TEMPORAL_SCHEMA_DIR=" + schema}
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	// The certs job's own command line: the frontend requires client
	// certificates (compose_mtls_test.go).
	tlsJob := runComposeCertsJob(t)
	certs := tlsJob.dir

	// The service's environment, with container paths and names mapped.
	paths := strings.NewReplacer("/certs/", certs+"/", "/ca/ca.pem", filepath.Join(certs, "ca.pem"),
		"/etc/temporal/config/dynamicconfig/", filepath.Join(p.WorkingDir, "deploy", "temporal", "dynamicconfig")+"/")
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "BIND_ON_IP=127.0.0.1", "LOG_LEVEL=warn"}
	for k, v := range p.Services["temporal"].Environment {
		switch k {
		case "POSTGRES_SEEDS":
			env = append(env, k+"=127.0.0.1")
		case "DB_PORT":
			env = append(env, k+"="+fmt.Sprint(pgPort))
		case "POSTGRES_PWD":
			env = append(env, k+"="+password)
		default:
			env = append(env, k+"="+paths.Replace(*v))
		}
	}
	front := freePort(t)
	env = append(env, "FRONTEND_GRPC_PORT="+fmt.Sprint(front))
	usedLow := map[int]bool{}
	for _, k := range []string{"FRONTEND_HTTP_PORT", "FRONTEND_MEMBERSHIP_PORT", "MATCHING_GRPC_PORT", "MATCHING_MEMBERSHIP_PORT",
		"HISTORY_GRPC_PORT", "HISTORY_MEMBERSHIP_PORT", "WORKER_GRPC_PORT", "WORKER_MEMBERSHIP_PORT"} {
		port := freePort(t)
		if strings.HasSuffix(k, "MEMBERSHIP_PORT") {
			// Temporal stores membership ports as a SQL smallint.
			port = freeLowPort(t, usedLow)
		}
		env = append(env, fmt.Sprintf("%s=%d", k, port))
	}
	srv := exec.Command(server, "start")
	srv.Env = env
	srv.Dir = t.TempDir()
	logFile := filepath.Join(t.TempDir(), "temporal-server.log")
	logf, err := os.Create(logFile)
	require.NoError(t, err)
	srv.Stdout, srv.Stderr = logf, logf
	require.NoError(t, srv.Start())
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); close(exited) }()
	t.Cleanup(func() { _ = srv.Process.Kill(); <-exited; logf.Close() })

	addr := fmt.Sprintf("127.0.0.1:%d", front)
	// Fail fast with the server's words if it cannot start.
	for deadline := time.Now().Add(90 * time.Second); ; {
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile)
			t.Fatalf("temporal-server exited:\n%s", tailLines(string(log), 5))
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the frontend did not listen")
		time.Sleep(250 * time.Millisecond)
	}
	ns := p.Services["temporal-namespace"]
	reg := exec.Command("/bin/sh", filepath.Join(p.WorkingDir, "deploy", "temporal", "register.sh"))
	reg.Env = []string{"PATH=" + filepath.Join(repoDir(t), "bin") + ":/usr/bin:/bin", "HOME=" + t.TempDir(),
		"TEMPORAL_ADDRESS=" + addr, "TEMPORAL_TLS_CA_FILE=" + filepath.Join(certs, "ca.pem"),
		"TEMPORAL_TLS_SERVER_NAME=" + *ns.Environment["TEMPORAL_TLS_SERVER_NAME"],
		"JOINERY_NAMESPACE=" + *ns.Environment["JOINERY_NAMESPACE"], "JOINERY_NAMESPACE_RETENTION=" + *ns.Environment["JOINERY_NAMESPACE_RETENTION"],
		"JOINERY_SEARCH_ATTRIBUTES=" + *ns.Environment["JOINERY_SEARCH_ATTRIBUTES"], "JOINERY_REGISTER_WAIT_TRIES=60",
		"TEMPORAL_TLS_CERT_FILE=" + filepath.Join(tlsJob.clientDir["temporal-namespace"], filepath.Base(*ns.Environment["TEMPORAL_TLS_CERT_FILE"])),
		"TEMPORAL_TLS_KEY_FILE=" + filepath.Join(tlsJob.clientDir["temporal-namespace"], filepath.Base(*ns.Environment["TEMPORAL_TLS_KEY_FILE"]))}
	out, err = reg.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("register.sh: %v\n%s\nserver log:\n%s", err, out, tailLines(string(log), 5))
	}

	// The frontend speaks TLS only: the same health check in plain text fails.
	plain := exec.Command(filepath.Join(repoDir(t), "bin", "temporal"), "--address", addr, "--client-connect-timeout", "5s",
		"operator", "cluster", "health")
	plain.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	out, err = plain.CombinedOutput()
	require.Error(t, err, "plain text to the TLS frontend: %s", out)

	checkComposeTemporalMTLS(t, addr, tlsJob, env)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "..."
		}
	}
	return strings.Join(lines, "\n")
}

// freeLowPort is a free loopback port below 32768.
func freeLowPort(t *testing.T, used map[int]bool) int {
	t.Helper()
	for p := 20000 + os.Getpid()%5000; p < 32000; p += 7 {
		if used[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			ln.Close()
			used[p] = true
			return p
		}
	}
	t.Fatal("no free port below 32768")
	return 0
}

package stack

// A Temporal cluster on PostgreSQL, on loopback: what Joinery runs on where
// users outgrow the single-process dev server. Unlike the dev server it is a
// real multi-node topology: PostgreSQL as its own process, and the Temporal
// services (frontend, two history nodes, matching, worker) as five separate
// server processes that find each other through the membership table in the
// database, each with its own gRPC and membership port.
//
// Who can reach it, and what they could make Joinery do:
//
//   - Any local user can reach the frontend (127.0.0.1:7333, no auth, like
//     the dev server's 7233) and start, signal or terminate joiners. That
//     does not let them approve one: decisions are signed by the inbox and
//     verified by the workflow. For anything beyond loopback, configure
//     mTLS and an authorizer (README, "Temporal client authentication").
//   - PostgreSQL listens on 127.0.0.1 only. Over TCP every role needs a
//     SCRAM password: the `temporal` role's is generated per cluster and
//     kept in a 0600 file (never on a command line or in a config file; the
//     server processes get it through their environment), and the
//     superuser `postgres` has none, so it can sign in only through the
//     Unix socket, in a directory only the postgres OS user can enter.
//   - The internal services (history, matching, worker gRPC and the
//     membership ports) bind to 127.0.0.1 only (bindOnLocalHost).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ClusterServerVersion is the Temporal server release `make cluster` runs
// (scripts/tools.sh builds bin/temporal-server and bin/temporal-sql-tool of
// this version). v1.32 needs a newer Go than the project's.
const ClusterServerVersion = "v1.31.2"

// Cluster locates a loopback Temporal cluster's binaries and state and fixes
// its ports. Defaults come from DefaultCluster; fields have environment
// variables.
type Cluster struct {
	// RepoDir is the checkout root.
	RepoDir string
	// BinDir holds temporal-server and temporal-sql-tool (JOINERY_BIN_DIR).
	BinDir string
	// StateDir holds the database, generated config, PID files and logs
	// (JOINERY_CLUSTER_STATE_DIR, default <JOINERY_STATE_DIR>/cluster).
	StateDir string
	// PGBinDir holds initdb, postgres and psql (JOINERY_PG_BIN_DIR, default
	// the newest /usr/lib/postgresql/<n>/bin).
	PGBinDir string
	// PGUser is the OS user PostgreSQL runs as: it refuses to run as root
	// (JOINERY_PG_OS_USER, default postgres).
	PGUser string
	// PGPort is PostgreSQL's TCP port on 127.0.0.1 (JOINERY_CLUSTER_PG_PORT,
	// 5439: not Debian's 5432, which a system cluster may hold).
	PGPort int
	// FrontendPort is the frontend's gRPC port, the one clients dial
	// (JOINERY_CLUSTER_FRONTEND_PORT, 7333). The other services take the
	// ports after it (FrontendPort+1 ... +4), its HTTP API FrontendPort+10
	// and the membership ports FrontendPort+100 ... +104.
	FrontendPort int
	// HistoryShards is numHistoryShards (JOINERY_CLUSTER_HISTORY_SHARDS, 4).
	// It is fixed when the database is first set up: Temporal cannot change
	// it afterwards.
	HistoryShards int
	// StartTimeout bounds the wait for each process to answer.
	StartTimeout time.Duration
	// Logger receives progress lines; nil means silent.
	Logger *slog.Logger
}

// DefaultCluster returns the cluster configuration for a checkout rooted at
// repoDir, overridden by the environment.
func DefaultCluster(repoDir string) Cluster {
	state := envOr("JOINERY_STATE_DIR", filepath.Join(repoDir, ".state"))
	return Cluster{
		RepoDir:       repoDir,
		BinDir:        envOr("JOINERY_BIN_DIR", filepath.Join(repoDir, "bin")),
		StateDir:      envOr("JOINERY_CLUSTER_STATE_DIR", filepath.Join(state, "cluster")),
		PGBinDir:      envOr("JOINERY_PG_BIN_DIR", defaultPGBinDir()),
		PGUser:        envOr("JOINERY_PG_OS_USER", "postgres"),
		PGPort:        envInt("JOINERY_CLUSTER_PG_PORT", 5439),
		FrontendPort:  envInt("JOINERY_CLUSTER_FRONTEND_PORT", 7333),
		HistoryShards: envInt("JOINERY_CLUSTER_HISTORY_SHARDS", 4),
		StartTimeout:  3 * time.Minute,
	}
}

// defaultPGBinDir is the newest Debian PostgreSQL's bin directory.
func defaultPGBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
	if len(dirs) == 0 {
		return "/usr/lib/postgresql/15/bin"
	}
	return dirs[len(dirs)-1]
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Address is the frontend's host:port, what JOINERY_TEMPORAL_ADDRESS names.
func (k Cluster) Address() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(k.FrontendPort))
}

// Env returns the settings that point Joinery's processes at the cluster
// instead of the dev server: everything else (Vault, LDAP, HRIS, Mailpit)
// stays the dev stack's.
func (k Cluster) Env() []string {
	return []string{
		"JOINERY_TEMPORAL_ADDRESS=" + k.Address(),
		"JOINERY_TEMPORAL_NAMESPACE=" + TemporalNamespace,
	}
}

// clusterNode is one Temporal server process of the cluster.
type clusterNode struct {
	name    string // process name: PID file, log, config file
	service string // the Temporal service it runs
	grpc    int
	member  int
	http    int // frontend only
}

// nodes are the cluster's Temporal processes, in start order: the history
// nodes own the shards, so they come first; the worker service (system
// workflows) needs the frontend.
func (k Cluster) nodes() []clusterNode {
	f := k.FrontendPort
	return []clusterNode{
		{name: "history-1", service: "history", grpc: f + 1, member: f + 101},
		{name: "history-2", service: "history", grpc: f + 2, member: f + 102},
		{name: "matching", service: "matching", grpc: f + 3, member: f + 103},
		{name: "frontend", service: "frontend", grpc: f, member: f + 100, http: f + 10},
		{name: "worker", service: "worker", grpc: f + 4, member: f + 104},
	}
}

// reservedPorts are the dev stack's default ports, which the cluster must
// never take (the dev stack runs beside it).
var reservedPorts = map[int]string{
	7233: "Temporal dev server", 8233: "Temporal Web UI", 8200: "Vault", 8201: "Vault cluster",
	3389: "slapd", 8090: "reference HRIS", 8091: "intake", 8092: "inbox", 8094: "codec server",
	1025: "Mailpit SMTP", 8025: "Mailpit API", 5432: "Debian's PostgreSQL",
}

// Validate refuses a configuration that could not run or would collide
// with the dev stack, before anything is written or started.
func (k Cluster) Validate() error {
	if k.HistoryShards < 4 {
		return fmt.Errorf("cluster: JOINERY_CLUSTER_HISTORY_SHARDS=%d: at least 4 shards, so that two history nodes each own some", k.HistoryShards)
	}
	if k.StateDir == "" || k.BinDir == "" {
		return errors.New("cluster: state and bin directories must be set")
	}
	seen := map[int]string{}
	add := func(p int, what string) error {
		if p <= 1024 || p > 65535 {
			return fmt.Errorf("cluster: %s port %d: must be in 1025-65535", what, p)
		}
		if other, ok := reservedPorts[p]; ok {
			return fmt.Errorf("cluster: %s port %d is the dev stack's %s", what, p, other)
		}
		if other, ok := seen[p]; ok {
			return fmt.Errorf("cluster: %s port %d is also %s", what, p, other)
		}
		seen[p] = what
		return nil
	}
	if err := add(k.PGPort, "postgres"); err != nil {
		return err
	}
	for _, n := range k.nodes() {
		if err := add(n.grpc, n.name+" gRPC"); err != nil {
			return err
		}
		if err := add(n.member, n.name+" membership"); err != nil {
			return err
		}
		if n.http != 0 {
			if err := add(n.http, n.name+" HTTP"); err != nil {
				return err
			}
		}
	}
	return nil
}

// procs is the process-level view of the cluster: the dev stack's PID file,
// log and spawn machinery, rooted in the cluster's state directory.
func (k Cluster) procs() Config {
	return Config{RepoDir: k.RepoDir, BinDir: k.BinDir, StateDir: k.StateDir, StartTimeout: k.StartTimeout, Logger: k.Logger}
}

func (k Cluster) pgDataDir() string      { return filepath.Join(k.StateDir, "pg") }
func (k Cluster) pgSocketDir() string    { return filepath.Join(k.StateDir, "pg-socket") }
func (k Cluster) pgPasswordFile() string { return filepath.Join(k.StateDir, "pg-password") }
func (k Cluster) configDir() string      { return filepath.Join(k.StateDir, "config") }
func (k Cluster) dynamicConfigFile() string {
	return filepath.Join(k.configDir(), "dynamicconfig.yaml")
}
func (k Cluster) nodeConfigFile(n clusterNode) string {
	return filepath.Join(k.configDir(), n.name+".yaml")
}
func (k Cluster) pgBin(name string) string { return filepath.Join(k.PGBinDir, name) }

// ClusterUp starts whatever of the cluster is not running, reuses what is,
// sets up and upgrades the schema, registers Joinery's namespace and search
// attributes, and returns the frontend's address once it serves them.
// Concurrent callers serialise on a lock file.
func ClusterUp(ctx context.Context, k Cluster) (string, error) {
	if err := k.Validate(); err != nil {
		return "", err
	}
	for _, b := range []string{k.procs().bin("temporal-server"), k.procs().bin("temporal-sql-tool"), k.pgBin("postgres"), k.pgBin("initdb")} {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("cluster: %s missing (run `make tools`): %w", b, err)
		}
	}
	if err := os.MkdirAll(k.StateDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(k.StateDir, "cluster.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	password, err := k.ensurePassword()
	if err != nil {
		return "", err
	}
	if err := k.ensurePostgres(ctx, password); err != nil {
		return "", fmt.Errorf("cluster: postgres: %w (log: %s)", err, k.procs().logFile("postgres"))
	}
	if err := k.ensureSchema(ctx, password); err != nil {
		return "", fmt.Errorf("cluster: schema: %w", err)
	}
	if err := k.writeConfigs(); err != nil {
		return "", fmt.Errorf("cluster: config: %w", err)
	}
	p := k.procs()
	for _, n := range k.nodes() {
		if err := p.ensure(ctx, k.nodeServer(n, password)); err != nil {
			return "", fmt.Errorf("cluster: %s: %w (log: %s)", n.name, err, p.logFile(n.name))
		}
	}
	if err := k.registerNamespace(ctx); err != nil {
		return "", fmt.Errorf("cluster: namespace: %w", err)
	}
	return k.Address(), nil
}

// ClusterDown stops the processes ClusterUp started, by their recorded PIDs,
// in reverse start order; PostgreSQL last, with a fast shutdown.
func ClusterDown(ctx context.Context, k Cluster) error {
	p := k.procs()
	var errs []error
	nodes := k.nodes()
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := p.stop(ctx, nodes[i].name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", nodes[i].name, err))
		}
	}
	if err := k.stopPostgres(ctx); err != nil {
		errs = append(errs, fmt.Errorf("postgres: %w", err))
	}
	return errors.Join(errs...)
}

// ClusterStatus reports, per process, nil when it answers or why it does not.
func ClusterStatus(ctx context.Context, k Cluster) map[string]error {
	out := map[string]error{}
	check := func(name string, f func(context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		out[name] = f(cctx)
	}
	check("postgres", k.pgReady)
	for _, n := range k.nodes() {
		check(n.name, k.nodeServer(n, "").ready)
	}
	return out
}

// ClusterPIDs returns the recorded PIDs of the cluster's live processes.
func ClusterPIDs(k Cluster) map[string]int {
	out := map[string]int{}
	p := k.procs()
	for _, name := range append([]string{"postgres"}, nodeNames(k)...) {
		if pid, ok := p.runningPID(name); ok {
			out[name] = pid
		}
	}
	return out
}

func nodeNames(k Cluster) []string {
	var out []string
	for _, n := range k.nodes() {
		out = append(out, n.name)
	}
	return out
}

// ensurePassword returns the temporal role's password, generating it once.
func (k Cluster) ensurePassword() (string, error) {
	if b, err := os.ReadFile(k.pgPasswordFile()); err == nil {
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(buf)
	if err := os.WriteFile(k.pgPasswordFile(), []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}

// pgCredential is the OS identity PostgreSQL runs as.
func (k Cluster) pgCredential() (*syscall.Credential, int, int, error) {
	u, err := user.Lookup(k.PGUser)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("OS user %q (PostgreSQL refuses to run as root; install postgresql): %w", k.PGUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

// runAsPG runs a PostgreSQL tool as the postgres OS user, stdin from input.
func (k Cluster) runAsPG(ctx context.Context, input string, bin string, args ...string) (string, error) {
	cred, _, _, err := k.pgCredential()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = k.StateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// A clean environment: nothing of root's (PGPASSWORD, HOME) leaks in.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ensurePostgres initialises the data directory once, starts PostgreSQL as
// the postgres OS user unless it already answers, and makes sure the
// temporal role exists with the current password.
func (k Cluster) ensurePostgres(ctx context.Context, password string) error {
	p := k.procs()
	if err := quick(ctx, k.pgReady); err == nil {
		k.logf("postgres: already up")
		return k.ensureRole(ctx, password)
	}
	var exited <-chan struct{}
	if pid, ok := p.runningPID("postgres"); ok {
		k.logf("postgres: pid %d running, waiting", pid)
	} else {
		if err := k.initPostgres(ctx); err != nil {
			return err
		}
		pid, ch, err := k.spawnPostgres()
		if err != nil {
			return err
		}
		exited = ch
		k.logf("postgres: started pid %d", pid)
	}
	if err := p.waitReady(ctx, server{name: "postgres", ready: k.pgReady}, exited); err != nil {
		return err
	}
	return k.ensureRole(ctx, password)
}

// initPostgres creates the data and socket directories (owned by the
// postgres user, 0700) and runs initdb if the cluster has none yet.
func (k Cluster) initPostgres(ctx context.Context) error {
	_, uid, gid, err := k.pgCredential()
	if err != nil {
		return err
	}
	for _, d := range []string{k.pgDataDir(), k.pgSocketDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(k.pgDataDir(), "PG_VERSION")); err == nil {
		return nil
	}
	k.logf("postgres: initdb %s", k.pgDataDir())
	// Local connections by peer (only the postgres OS user reaches the
	// socket directory anyway), TCP by SCRAM password; the superuser gets
	// no password, so it cannot sign in over TCP at all.
	_, err = k.runAsPG(ctx, "", k.pgBin("initdb"), "-D", k.pgDataDir(), "-U", "postgres",
		"--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale")
	return err
}

// spawnPostgres starts the postmaster detached, as the postgres OS user,
// listening on 127.0.0.1 only, and records its PID like every stack server.
func (k Cluster) spawnPostgres() (int, <-chan struct{}, error) {
	p := k.procs()
	cred, _, _, err := k.pgCredential()
	if err != nil {
		return 0, nil, err
	}
	for _, d := range []string{filepath.Dir(p.pidFile("postgres")), p.logDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, nil, err
		}
	}
	logf, err := os.OpenFile(p.logFile("postgres"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	bin := k.pgBin("postgres")
	args := []string{"-D", k.pgDataDir(),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(k.PGPort),
		"-c", "unix_socket_directories=" + k.pgSocketDir(),
		// Five Temporal processes hold up to 22 connections each.
		"-c", "max_connections=200",
	}
	fmt.Fprintf(logf, "\n==== %s starting %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = k.StateDir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return cmd.Process.Pid, exited, writePID(p, "postgres", cmd.Process.Pid, bin)
}

// stopPostgres ends the recorded postmaster with a fast shutdown (SIGINT:
// roll back open transactions, checkpoint, exit) rather than SIGTERM's
// "smart" one, which waits for every client to leave.
func (k Cluster) stopPostgres(ctx context.Context) error {
	p := k.procs()
	pid, ok := p.runningPID("postgres")
	if !ok {
		_ = os.Remove(p.pidFile("postgres"))
		return nil
	}
	k.logf("postgres: stopping pid %d", pid)
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			_ = os.Remove(p.pidFile("postgres"))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("pid %d did not stop within 60s", pid)
}

// pgReady asks the server itself (pg_isready over TCP) whether it accepts
// connections.
func (k Cluster) pgReady(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, k.pgBin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(k.PGPort), "-t", "2").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_isready 127.0.0.1:%d: %v %s", k.PGPort, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// psql runs SQL as the superuser through the Unix socket (peer auth).
func (k Cluster) psql(ctx context.Context, sql string) (string, error) {
	return k.runAsPG(ctx, sql, k.pgBin("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
		"-h", k.pgSocketDir(), "-p", strconv.Itoa(k.PGPort), "-U", "postgres", "-d", "postgres", "-f", "-")
}

// ensureRole creates the temporal role (it may create databases, nothing
// more) and sets its password to the generated one; the SQL goes through
// stdin so the password is never on a command line.
func (k Cluster) ensureRole(ctx context.Context, password string) error {
	if strings.Trim(password, "0123456789abcdef") != "" {
		return errors.New("generated password has unexpected characters")
	}
	_, err := k.psql(ctx, `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal') THEN
    CREATE ROLE temporal LOGIN CREATEDB;
  END IF;
END $$;
ALTER ROLE temporal PASSWORD '`+password+`';
`)
	return err
}

// ensureSchema creates Temporal's two databases on first use and upgrades
// both schemas to what the pinned sql tool embeds (idempotent: update-schema
// applies only the versions the database lacks).
func (k Cluster) ensureSchema(ctx context.Context, password string) error {
	for _, db := range []struct{ name, schema string }{
		{"temporal", "postgresql/v12/temporal"},
		{"temporal_visibility", "postgresql/v12/visibility"},
	} {
		exists, err := k.psql(ctx, "SELECT 1 FROM pg_database WHERE datname = '"+db.name+"';\n")
		if err != nil {
			return err
		}
		if strings.TrimSpace(exists) != "1" {
			k.logf("cluster: creating database %s", db.name)
			if err := k.sqlTool(ctx, password, db.name, "create-database"); err != nil {
				return err
			}
			if err := k.sqlTool(ctx, password, db.name, "setup-schema", "-v", "0.0"); err != nil {
				return err
			}
		}
		if err := k.sqlTool(ctx, password, db.name, "update-schema", "--schema-name", db.schema); err != nil {
			return err
		}
	}
	return nil
}

// sqlTool runs temporal-sql-tool against the cluster's PostgreSQL; the
// password goes in SQL_PASSWORD, not on the command line.
func (k Cluster) sqlTool(ctx context.Context, password, db string, args ...string) error {
	full := append([]string{"--ep", "127.0.0.1", "-p", strconv.Itoa(k.PGPort), "-u", "temporal",
		"--pl", "postgres12", "--db", db}, args...)
	cmd := exec.CommandContext(ctx, k.procs().bin("temporal-sql-tool"), full...)
	cmd.Env = append(os.Environ(), "SQL_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("temporal-sql-tool %s: %w: %s", strings.Join(full, " "), err, tailString(string(out), 10))
	}
	return nil
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// clusterPasswordEnv carries the temporal role's password to the server
// processes; their config files read it through the template, so no file
// but the 0600 password file holds it.
const clusterPasswordEnv = "JOINERY_CLUSTER_PG_PASSWORD"

// nodeConfig renders one process's server configuration, after the
// server module's config/development-postgres12.yaml: the same persistence
// and cluster metadata, this process's own ports for its service, no
// metrics or pprof listeners (five processes would fight over one port),
// archival off.
func (k Cluster) nodeConfig(self clusterNode) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# enable-template
# Generated by internal/stack (cluster.go) for the %s process; rewritten at
# every make cluster. The password comes from the environment.
log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: %d
  datastores:
`, self.name, k.HistoryShards)
	for _, ds := range []struct {
		name, db string
		conns    int
	}{{"postgres-default", "temporal", 20}, {"postgres-visibility", "temporal_visibility", 4}} {
		fmt.Fprintf(&b, `    %s:
      sql:
        pluginName: "postgres12"
        databaseName: "%s"
        connectAddr: "127.0.0.1:%d"
        connectProtocol: "tcp"
        user: "temporal"
        password: '{{ env "%s" }}'
        maxConns: %d
        maxIdleConns: %d
        maxConnLifetime: "1h"
`, ds.name, ds.db, k.PGPort, clusterPasswordEnv, ds.conns, ds.conns)
	}
	fmt.Fprintf(&b, `
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"

services:
`)
	// Every process lists every service (the server validates the map);
	// only its own entry's ports are ever bound by it. Both history
	// processes run the "history" service, so each file carries its own
	// node's ports there.
	seen := map[string]bool{}
	for _, n := range k.nodes() {
		if seen[n.service] {
			continue
		}
		seen[n.service] = true
		if n.service == self.service {
			n = self
		}
		fmt.Fprintf(&b, "  %s:\n    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnLocalHost: true\n", n.service, n.grpc, n.member)
		if n.http != 0 {
			fmt.Fprintf(&b, "      httpPort: %d\n", n.http)
		}
	}
	fmt.Fprintf(&b, `
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:%d"

dcRedirectionPolicy:
  policy: "noop"

dynamicConfigClient:
  filepath: "%s"
  pollInterval: "10s"
`, k.FrontendPort, k.dynamicConfigFile())
	return b.String()
}

// clusterDynamicConfig: what the dev server also sets so that a search
// attribute registered a moment ago is usable at once, and IDs as long as
// the dev server allows.
const clusterDynamicConfig = `# Generated by internal/stack (cluster.go).
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
limit.maxIDLength:
  - value: 255
`

// writeConfigs writes every process's configuration (no secrets in them).
func (k Cluster) writeConfigs() error {
	if err := os.MkdirAll(k.configDir(), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(k.dynamicConfigFile(), []byte(clusterDynamicConfig), 0o644); err != nil {
		return err
	}
	for _, n := range k.nodes() {
		if err := os.WriteFile(k.nodeConfigFile(n), []byte(k.nodeConfig(n)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// nodeServer is one Temporal process as a stack server: spawned, waited
// for, stopped by PID like the dev stack's.
func (k Cluster) nodeServer(n clusterNode, password string) server {
	return server{
		name: n.name,
		command: func() (string, []string, []string, error) {
			return k.procs().bin("temporal-server"),
				[]string{"--config-file", k.nodeConfigFile(n), "--allow-no-auth", "start", "--service", n.service},
				[]string{clusterPasswordEnv + "=" + password}, nil
		},
		ready: func(ctx context.Context) error {
			if n.service == "frontend" {
				cl, err := k.client(ctx)
				if err != nil {
					return err
				}
				defer cl.Close()
				_, err = cl.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			}
			// Internal services: both of their ports accept connections.
			for _, port := range []int{n.grpc, n.member} {
				conn, err := dialer(ctx).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
				if err != nil {
					return err
				}
				conn.Close()
			}
			return nil
		},
	}
}

// client dials the cluster's frontend, quietly.
func (k Cluster) client(ctx context.Context) (client.Client, error) {
	return client.DialContext(ctx, client.Options{
		HostPort:  k.Address(),
		Namespace: TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
}

// registerNamespace registers Joinery's namespace (the dev server creates
// its own; a cluster's worker service creates only temporal-system), then
// the search attributes, retrying while the services finish joining.
func (k Cluster) registerNamespace(ctx context.Context) error {
	cl, err := k.client(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(k.StartTimeout)
	var last error
	for time.Now().Before(deadline) {
		last = k.tryRegister(ctx, cl)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("not registered within %s: %w", k.StartTimeout, last)
}

func (k Cluster) tryRegister(ctx context.Context, cl client.Client) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cl.WorkflowService().RegisterNamespace(cctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        TemporalNamespace,
		Description:                      "Joinery's joiners",
		WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register %s: %w", TemporalNamespace, err)
	}
	if err == nil {
		k.logf("cluster: registered namespace %s", TemporalNamespace)
	}
	p := k.procs()
	p.TemporalPort = k.FrontendPort
	return p.registerSearchAttributes(cctx)
}

func (k Cluster) logf(format string, args ...any) {
	if k.Logger != nil {
		k.Logger.Info(fmt.Sprintf(format, args...))
	}
}

// DatabaseBytes is the size of the cluster's two databases (history and
// visibility), for measuring what waiting joiners cost the server.
func (k Cluster) DatabaseBytes(ctx context.Context) (int64, error) {
	out, err := k.psql(ctx, "SELECT coalesce(sum(pg_database_size(datname)), 0) FROM pg_database WHERE datname IN ('temporal', 'temporal_visibility');\n")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}

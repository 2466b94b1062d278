package reliability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/joinery/joinery/internal/stack"
)

// Stack is a private Joinery stack for the suite: its own state directory
// and free ports for every server (so killing and restarting servers never
// touches the shared dev stack), proxies in front of LDAP, Vault and the
// HRIS, and the worker as a separate process that can be killed with -9.
type Stack struct {
	Cfg stack.Config
	EP  stack.Endpoints
	// Dir is the suite's scratch directory (state, binaries, worker cwd).
	Dir string
	// LDAP, Vault and HRIS are the proxies the worker talks through.
	LDAP, Vault, HRIS *Proxy
	// Worker is the worker process, connected through the proxies.
	Worker *Process
	// Sweeper is the wrapping-token sweeper (the worker binary in sweeper
	// mode, its own Vault identity), straight to Vault: it is not what the
	// faults are aimed at, it is what cleans up after one.
	Sweeper *Process
}

// StartStack brings up a private stack under dir. workerBin is the worker
// binary (bin/worker from `make build`).
func StartStack(ctx context.Context, repo, dir, workerBin string) (*Stack, error) {
	// The reference HRIS delivers a signed webhook for every new hire; by
	// default to the shared dev intake on :8091, which would start joiners
	// there for our private HR records. The caller points it elsewhere.
	if os.Getenv("JOINERY_STACK_WEBHOOK_URL") == "" {
		return nil, errors.New("reliability: set JOINERY_STACK_WEBHOOK_URL (e.g. to a closed port) so the private HRIS never calls the shared intake")
	}
	cfg := stack.DefaultConfig(repo)
	cfg.StateDir = filepath.Join(dir, "state")
	// Our own bin directory: the stack rebuilds refhris into BinDir at Up,
	// which must not race other users of the checkout's bin/refhris.
	cfg.BinDir = filepath.Join(dir, "bin")
	if err := os.MkdirAll(cfg.BinDir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{"temporal", "vault", "mailpit"} {
		src := filepath.Join(repo, "bin", name)
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("%s missing (run `make tools`): %w", src, err)
		}
		if err := os.Symlink(src, filepath.Join(cfg.BinDir, name)); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	cfg.TemporalPort, cfg.TemporalUIPort, cfg.VaultPort, cfg.LDAPPort, cfg.HRISPort = ports[0], ports[1], ports[2], ports[3], ports[4]
	cfg.MailpitSMTPPort, cfg.MailpitHTTPPort, cfg.InboxPort = ports[5], ports[6], ports[7]
	cfg.StartTimeout = 2 * time.Minute
	ep, err := stack.Up(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("private stack: %w", err)
	}
	s := &Stack{Cfg: cfg, EP: ep, Dir: dir}
	if s.LDAP, err = NewProxy("ldap", LDAP, hostPort(ep.LDAPURL)); err != nil {
		return nil, err
	}
	if s.Vault, err = NewProxy("vault", HTTP, hostPort(ep.VaultAddr)); err != nil {
		return nil, err
	}
	if s.HRIS, err = NewProxy("hris", HTTP, hostPort(ep.HRISURL)); err != nil {
		return nil, err
	}
	env := s.WorkerEnv(repo)
	wdir := filepath.Join(dir, "worker")
	if err := os.MkdirAll(wdir, 0o755); err != nil {
		return nil, err
	}
	s.Worker = &Process{Bin: workerBin, Env: env, Dir: wdir, Log: filepath.Join(cfg.StateDir, "logs", "worker.log")}
	senv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		// The lowest minimum age the sweeper accepts: the suite waits it out.
		"JOINERY_SWEEPER_MIN_AGE=" + SweeperMinAge.String()}
	s.Sweeper = &Process{Bin: workerBin, Env: append(senv, stack.SweeperEnv(ep)...), Dir: wdir,
		Log: filepath.Join(cfg.StateDir, "logs", "sweeper.log")}
	return s, nil
}

// SweeperMinAge is the private sweeper's minimum age: the floor
// (activities.MinSweepAge), so the suite waits as little as the product
// allows.
const SweeperMinAge = 3 * time.Minute

// ClientEnv is the configuration for the suite's own Joinery client (the
// starter side): the private stack, straight to the servers.
func (s *Stack) ClientEnv(repo string) map[string]string {
	env := map[string]string{}
	for _, kv := range stack.Env(s.EP) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["JOINERY_POLICY_FILE"] = filepath.Join(repo, "testdata", "policy", "default.yaml")
	env["JOINERY_AUDIT_LOG"] = filepath.Join(s.Dir, "client-audit.jsonl")
	return env
}

// WorkerEnv is what `bin/devstack env` prints for this private stack, with
// LDAP, Vault and the HRIS pointed at the proxies and every relative
// default (audit log, policy) made absolute inside the suite's directory.
func (s *Stack) WorkerEnv(repo string) []string {
	env := s.ClientEnv(repo)
	env["JOINERY_LDAP_URL"] = "ldap://" + s.LDAP.Addr()
	env["JOINERY_VAULT_ADDR"] = "http://" + s.Vault.Addr()
	env["JOINERY_HRIS_URL"] = "http://" + s.HRIS.Addr()
	env["JOINERY_AUDIT_LOG"] = filepath.Join(s.Dir, "worker-audit.jsonl")
	// Short LDAP timeouts so a cut connection is noticed quickly.
	env["JOINERY_LDAP_TIMEOUT"] = "10s"
	// The metrics listener's default port belongs to the dev stack's
	// worker; ours would fail to start beside it.
	env["JOINERY_WORKER_METRICS_ADDR"] = "off"
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// RestartTemporal kills the private Temporal server (SIGKILL, by the PID
// its state directory recorded) and starts it again on the same state:
// joiners in flight must continue.
func (s *Stack) RestartTemporal(ctx context.Context, downFor time.Duration) error {
	pid, err := readPID(filepath.Join(s.Cfg.StateDir, "pids", "temporal.pid"))
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill temporal %d: %w", pid, err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(downFor)
	_, err = stack.Up(ctx, s.Cfg)
	return err
}

// Close stops the worker, the proxies and the private servers (exactly the
// PIDs this stack recorded).
func (s *Stack) Close() error {
	if s.Worker != nil {
		s.Worker.Stop()
	}
	if s.Sweeper != nil {
		s.Sweeper.Stop()
	}
	for _, p := range []*Proxy{s.LDAP, s.Vault, s.HRIS} {
		if p != nil {
			_ = p.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return stack.Down(ctx, s.Cfg)
}

// Process is a worker process the suite starts, kills (-9) and restarts.
type Process struct {
	// Bin, Env and Dir are the binary, its whole environment and its
	// working directory; Log receives its stdout and stderr.
	Bin string
	Env []string
	Dir string
	Log string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
	// Kills counts the kill -9s that hit a running process.
	Kills int
}

// Start starts the process unless it runs.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Bin)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = p.Env, p.Dir, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(exit) }()
	p.cmd, p.exit = cmd, exit
	return nil
}

// StartChecked starts the process and fails when it exits within wait
// (bad configuration, a port taken), with the end of its log.
func (p *Process) StartChecked(wait time.Duration) error {
	if err := p.Start(); err != nil {
		return err
	}
	time.Sleep(wait)
	if !p.Running() {
		log, _ := os.ReadFile(p.Log)
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		return fmt.Errorf("worker %s exited at start; log %s:\n%s", p.Bin, p.Log, strings.Join(lines, "\n"))
	}
	return nil
}

// Kill sends SIGKILL to the process we started (by its PID) and waits
// until it is gone: no graceful stop, no activity completes.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exit
	p.cmd = nil
	p.Kills++
}

// KillAndRestart kills the process and starts it again after pause, in
// the background (a trigger's action must return so the proxy goes on).
func (p *Process) KillAndRestart(pause time.Duration) {
	p.Kill()
	go func() {
		time.Sleep(pause)
		_ = p.Start()
	}()
}

// Running reports whether the process we started is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exit:
		return false
	default:
		return true
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 10 s).
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exit
	}
	p.cmd = nil
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("bad pid file %s", path)
	}
	return pid, nil
}

func hostPort(url string) string {
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	h, _, _ := strings.Cut(rest, "/")
	return h
}

// freePorts returns n distinct free loopback ports (held open together so
// none is handed out twice).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

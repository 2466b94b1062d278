package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// spawn starts bin detached in a session of its own, so neither a Ctrl-C
// aimed at `make` nor the end of the shell or test process that started it
// takes the stack down; output is appended to the server's log file and the
// PID recorded.
func (c Config) spawn(name, bin string, args, env []string) (int, <-chan struct{}, error) {
	for _, d := range []string{filepath.Dir(c.pidFile(name)), c.logDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, nil, err
		}
	}
	logf, err := os.OpenFile(c.logFile(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n==== %s starting %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.RepoDir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	// Reap the child when it exits so it never lingers as a zombie while the
	// launching process (a long test run, `make run`) is still alive; the
	// channel tells a waiting start that it died.
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return pid, exited, writePID(c, name, pid, bin)
}

// runningPID returns the recorded PID of a server if that process is alive
// and is still the binary we started (PIDs get reused).
func (c Config) runningPID(name string) (int, bool) {
	data, err := os.ReadFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	lines := strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if !alive(pid) {
		return 0, false
	}
	if len(lines) == 2 {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return 0, false
		}
		exe := strings.SplitN(string(cmdline), "\x00", 2)[0]
		if filepath.Base(exe) != filepath.Base(strings.TrimSpace(lines[1])) {
			return 0, false
		}
	}
	return pid, true
}

// alive is true for a live, non-zombie process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 (after "pid (comm)") is the state; Z is a zombie.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// stop sends SIGTERM to the recorded PID, then SIGKILL if it is still alive
// after a grace period, and removes the PID file.
func (c Config) stop(ctx context.Context, name string) error {
	pid, ok := c.runningPID(name)
	if !ok {
		_ = os.Remove(c.pidFile(name))
		return nil
	}
	c.logf("%s: stopping pid %d", name, pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			_ = os.Remove(c.pidFile(name))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	_ = os.Remove(c.pidFile(name))
	return nil
}

// tail returns the last n lines of a file, for start-failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writePID records a server's PID and binary; runningPID checks both, so a
// reused PID is never taken for our server.
func writePID(c Config, name string, pid int, bin string) error {
	if err := os.MkdirAll(filepath.Dir(c.pidFile(name)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.pidFile(name), []byte(fmt.Sprintf("%d\n%s\n", pid, bin)), 0o644)
}

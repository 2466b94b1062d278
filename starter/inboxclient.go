package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/run"
)

// Approve, reject and extend are a person's decisions, so the CLI makes them
// through the approval inbox's API with that person's own directory
// password: the inbox signs the decision, and a decision that did not pass
// through it proves nothing to the joiner. The password is read from the
// terminal without echo, or from stdin for scripts; never from a flag, which
// would leave it in shell history and the process list.

// stdin is where --password-stdin reads (a variable so tests can feed it).
var stdin io.Reader = os.Stdin

// credentials says whose password the CLI sends and how it reads it.
type credentials struct {
	user          string
	passwordStdin bool
}

// readPassword gets the person's password: the first line of stdin with
// --password-stdin, else a prompt on the controlling terminal.
func (c credentials) readPassword(stderr io.Writer) (string, error) {
	if c.passwordStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: stdin held no password")
		}
		return pw, nil
	}
	return promptPassword(stderr, fmt.Sprintf("Directory password for %s: ", c.user))
}

// promptPassword reads a line from /dev/tty with echo off. stty does the
// terminal handling, which keeps the CLI free of a terminal library.
func promptPassword(stderr io.Writer, prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("no terminal to ask for the password on; use --password-stdin")
	}
	defer tty.Close()
	stty := func(args ...string) error {
		cmd := exec.Command("stty", args...)
		cmd.Stdin = tty
		return cmd.Run()
	}
	if err := stty("-echo"); err != nil {
		// Never read a password that would be echoed to the screen.
		return "", fmt.Errorf("cannot turn off terminal echo (%v); use --password-stdin", err)
	}
	defer func() { _ = stty("echo"); fmt.Fprintln(tty) }()
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(io.LimitReader(tty, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password given")
	}
	return pw, nil
}

// inboxDecision sends one decision through the inbox's API and reports the
// answer. Exit codes: 0 the joiner answered or the decision was sent; 3 the
// inbox or the joiner refused (including "no such joiner waiting for you",
// which is also what someone else's joiner looks like); 1 anything else.
func inboxDecision(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, creds credentials, id string, req inbox.DecisionRequest) int {
	if strings.TrimSpace(creds.user) == "" {
		fmt.Fprintln(stderr, "no username: pass --as USER")
		return exitUsage
	}
	pw, err := creds.readPassword(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	wfID := run.ResolveID(id)
	body, _ := json.Marshal(req)
	endpoint := strings.TrimRight(cfg.InboxURL, "/") + "/api/v1/joiners/" + url.PathEscape(wfID) + "/decision"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "inbox URL %q: %v\n", cfg.InboxURL, err)
		return exitUsage
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.SetBasicAuth(creds.user, pw)
	hc := &http.Client{Timeout: 90 * time.Second}
	resp, err := hc.Do(hr)
	if err != nil {
		fmt.Fprintf(stderr, "the approval inbox at %s did not answer: %v\n", cfg.InboxURL, err)
		return exitFailed
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans inbox.DecisionResponse
	var apiErr inbox.APIError
	_ = json.Unmarshal(raw, &ans)
	_ = json.Unmarshal(raw, &apiErr)
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted:
		fmt.Fprintf(stdout, "%s: %s by %s (%s)\n", wfID, ans.Outcome, creds.user, ans.Message)
		return exitOK
	case resp.StatusCode == http.StatusConflict:
		fmt.Fprintf(stderr, "%s: refused: %s\n", wfID, ans.Message)
		return exitRefused
	case resp.StatusCode == http.StatusNotFound:
		fmt.Fprintf(stderr, "%s: refused: no such joiner waiting for %s\n", wfID, creds.user)
		return exitRefused
	case resp.StatusCode == http.StatusTooManyRequests:
		fmt.Fprintf(stderr, "%s (retry after %ss)\n", apiErr.Error, resp.Header.Get("Retry-After"))
		return exitFailed
	case apiErr.Error != "":
		fmt.Fprintf(stderr, "%s: %s (HTTP %d)\n", wfID, apiErr.Error, resp.StatusCode)
		return exitFailed
	default:
		fmt.Fprintf(stderr, "%s: unexpected answer from the inbox: HTTP %d\n", wfID, resp.StatusCode)
		return exitFailed
	}
}

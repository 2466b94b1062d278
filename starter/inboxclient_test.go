package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/inbox"
)

// fakeInboxAPI stands in for the inbox's API: it records what the CLI sent
// and answers with the given status and body.
type fakeInboxAPI struct {
	mu       sync.Mutex
	user, pw string
	path     string
	req      inbox.DecisionRequest
	code     int
	body     any
}

func (f *fakeInboxAPI) serve(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.user, f.pw, _ = r.BasicAuth()
		f.path = r.URL.EscapedPath()
		b, _ := io.ReadAll(r.Body)
		f.req = inbox.DecisionRequest{}
		_ = json.Unmarshal(b, &f.req)
		if f.code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "600")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.code)
		_ = json.NewEncoder(w).Encode(f.body)
	}))
	t.Cleanup(ts.Close)
	t.Setenv("JOINERY_INBOX_URL", ts.URL)
}

// withStdin feeds the CLI's --password-stdin.
func withStdin(t *testing.T, s string) {
	old := stdin
	stdin = strings.NewReader(s)
	t.Cleanup(func() { stdin = old })
}

func TestApproveGoesThroughTheInboxWithThePersonsPassword(t *testing.T) {
	f := &fakeInboxAPI{code: http.StatusOK, body: inbox.DecisionResponse{Outcome: "approved", Message: "the joiner answered: approved"}}
	f.serve(t)
	withStdin(t, "dev-ada-pass\n")
	code, out, errOut := cli(t, "approve", "200", "--as", "ada.lovelace", "--comment", "welcome", "--wait", "--password-stdin")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "joiner-200: approved by ada.lovelace")
	require.Equal(t, "ada.lovelace", f.user)
	require.Equal(t, "dev-ada-pass", f.pw)
	require.Equal(t, "/api/v1/joiners/joiner-200/decision", f.path)
	require.Equal(t, inbox.DecisionRequest{Action: "approve", Comment: "welcome", Wait: true}, f.req)

	withStdin(t, "dev-ada-pass\r\n")
	f.body = inbox.DecisionResponse{Outcome: "sent", Message: "reject sent"}
	f.code = http.StatusAccepted
	code, _, errOut = cli(t, "reject", "joiner-200", "--as", "ada.lovelace", "--password-stdin")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "dev-ada-pass", f.pw)
	require.Equal(t, inbox.DecisionRequest{Action: "reject"}, f.req)

	withStdin(t, "dev-ada-pass\n")
	code, _, errOut = cli(t, "extend", "nhi-bot-staging", "2027-06-30", "--as", "ada.lovelace", "--comment", "still needed", "--password-stdin")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "/api/v1/joiners/joiner-nhi-bot-staging/decision", f.path)
	require.Equal(t, inbox.DecisionRequest{Action: "extend", EndDate: "2027-06-30", Comment: "still needed"}, f.req)
}

func TestInboxAnswersBecomeExitCodes(t *testing.T) {
	for name, tc := range map[string]struct {
		code int
		body any
		exit int
		msg  string
	}{
		"refused by the joiner": {http.StatusConflict, inbox.DecisionResponse{Outcome: "refused", Message: "decision is stale"}, exitRefused, "decision is stale"},
		"not yours":             {http.StatusNotFound, inbox.APIError{Error: "no such joiner"}, exitRefused, "no such joiner waiting for ada.lovelace"},
		"wrong password":        {http.StatusUnauthorized, inbox.APIError{Error: "invalid username or password"}, exitFailed, "invalid username or password"},
		"throttled":             {http.StatusTooManyRequests, inbox.APIError{Error: "too many failed sign-ins"}, exitFailed, "retry after 600s"},
		"bad request":           {http.StatusBadRequest, inbox.APIError{Error: "comment is longer than 1000 bytes"}, exitFailed, "1000 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeInboxAPI{code: tc.code, body: tc.body}
			f.serve(t)
			withStdin(t, "pw\n")
			code, _, errOut := cli(t, "approve", "200", "--as", "ada.lovelace", "--password-stdin", "--wait")
			require.Equal(t, tc.exit, code)
			require.Contains(t, errOut, tc.msg)
		})
	}
}

func TestDecisionUsage(t *testing.T) {
	t.Setenv("JOINERY_INBOX_URL", "http://127.0.0.1:1") // nothing may reach it
	for _, args := range [][]string{
		{"approve"}, {"approve", "1", "2"},
		{"approve", "1", "--password", "hunter2"}, // there is no password flag
		{"approve", "1", "--break-glass"},         // break-glass needs a reason
		{"approve", "1", "--break-glass", "--reason", "  "},
		{"reject", "1", "--reason", "x"}, // a reason is for break-glass
		{"extend", "1"}, {"extend", "1", "soon"},
	} {
		code, _, _ := cli(t, args...)
		require.Equal(t, exitUsage, code, "%v", args)
	}
	withStdin(t, "")
	code, _, errOut := cli(t, "approve", "1", "--as", "ada.lovelace", "--password-stdin")
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, "stdin held no password")
}

package inbox

// A whole joiner decided through the inbox, on the dev stack: the worker
// trusts only this test's inbox key, the manager signs in with her directory
// password, the joiner verifies the signed decision itself, and the manager
// collects the initial credential from the handover page.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/workflows"
)

func TestIntegrationJoinerApprovedThroughTheInbox(t *testing.T) {
	h := e2e.NewHarness(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer := &countingSigner{FileSigner: decision.NewFileSigner(key)}
	// Set before any joiner runs: the worker trusts this inbox's key only.
	h.Acts.DecisionKeys = []decision.PublicKey{signer.PublicKey()}
	if h.Acts.People == nil {
		h.Acts.People = h.Dir // live approver checks (until run.Activities wires them)
	}

	e := &env{t: t, signer: signer, clock: &fakeClock{}, handover: h.Cfg.InboxDir}
	var handler http.Handler
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	// The inbox holds the worker's pseudonym key: that is how it finds
	// ada's joiners, whose search attributes carry no names.
	keyer, err := pseudonym.New(h.Cfg.PseudonymKey)
	require.NoError(t, err)
	e.srv, err = New(Config{BaseURL: e.ts.URL, HandoverDir: h.Cfg.InboxDir}, Deps{Auth: h.Dir, Signer: signer, Temporal: h.C,
		Wrapping: VaultWrapping{Addr: h.EP.VaultAddr}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Pseudonyms: keyer})
	require.NoError(t, err)
	handler = e.srv.Handler()

	id := h.Hire("Inbox", "Tester")
	h.Start(id)
	wfID := workflows.JoinerWorkflowID(id)

	// It shows up in ada's "waiting for me" (JoinerDeciders + status).
	require.Eventually(t, func() bool {
		a := e.api("GET", "/api/v1/waiting", "ada.lovelace", "dev-ada-pass", "")
		var rows []WaitingJoiner
		_ = json.Unmarshal([]byte(a.Raw), &rows)
		for _, r := range rows {
			if r.WorkflowID == wfID && strings.Join(r.Actions, ",") == "approve,reject" {
				return true
			}
		}
		return false
	}, time.Minute, 250*time.Millisecond, "joiner %s never waited for ada", wfID)

	// grace is not its approver: not found, nothing signed.
	a := e.api("POST", "/api/v1/joiners/"+wfID+"/decision", "grace.hopper", "dev-grace-pass", `{"action":"approve","wait":true}`)
	require.Equal(t, http.StatusNotFound, a.Code, a.Raw)
	require.Equal(t, 0, signer.Count())

	// ada approves in the browser; the joiner verifies and answers.
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	jp := b.get("/joiners/" + wfID)
	require.Equal(t, http.StatusOK, jp.Code)
	p := b.post("/joiners/"+wfID+"/decision", url.Values{"csrf": {csrfOf(t, jp)}, "action": {"approve"}, "comment": {"welcome"}})
	require.Equal(t, http.StatusOK, p.Code, p.Body)

	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome, res.Error)
	var counted *workflows.Decision
	for i, d := range res.Approvals {
		if d.Approver == "ada.lovelace" && d.Approved && d.Refused == "" {
			counted = &res.Approvals[i]
		}
	}
	require.NotNil(t, counted, "ada's approval counted: %+v", res.Approvals)
	require.True(t, counted.Signed)
	require.Equal(t, signer.KeyID(), counted.KeyID)
	require.Contains(t, counted.Via, ViaWeb)

	// Her past decisions list it (JoinerDecidedBy).
	require.Eventually(t, func() bool { return strings.Contains(b.get("/decisions").Body, wfID) }, 30*time.Second, 250*time.Millisecond)

	// What the Temporal server indexes in clear names nobody: not the
	// joiner (name, username, e-mail), not the manager who approved, not
	// the escalation target. The people fields hold pseudonyms ("ada"
	// alone is not checked: it is hex, and a pseudonym may contain it).
	requireNoNamesInSearchAttributes(t, h, wfID, []string{"Inbox", "Tester", res.Username, "ada.lovelace", "lovelace",
		"grace.hopper", "grace", "hopper", "@"})
	sa := searchAttributes(t, h, wfID)
	require.Equal(t, keyer.Of("ada.lovelace"), sa[workflows.SAManager.GetName()])
	require.Contains(t, sa[workflows.SADecidedBy.GetName()], keyer.Of("ada.lovelace"))
	require.NotContains(t, sa, "", "no empty attribute")

	// The initial credential waits for her on the handover page, once.
	hp := b.get("/handover")
	require.Contains(t, hp.Body, ">"+id+"<")
	require.Contains(t, hp.Body, "waiting for you")
	cp := b.post("/handover/"+id+"/unwrap", url.Values{"csrf": {csrfOf(t, hp)}})
	require.Equal(t, http.StatusOK, cp.Code, cp.Body)
	require.Contains(t, cp.Body, "password")
	require.NotContains(t, b.get("/handover").Body, ">"+id+"<")
}

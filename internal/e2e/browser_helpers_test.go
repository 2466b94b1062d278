package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// chromiumPath is Debian's chromium, which scripts/tools.sh installs.
const chromiumPath = "/usr/bin/chromium"

// syncBuffer is a log sink the inbox writes from its handler goroutines
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startInbox runs the approval inbox in-process on a free loopback port,
// built the way `starter serve` builds it (starter's newInbox: the stack's
// decision key file, the directory for sign-in, Vault for the handover),
// with the harness's Temporal client. The worker's e-mail links are pointed
// at it, as JOINERY_INBOX_URL would be in a deployment, so that the link
// in a mail opens this inbox. Call it before any joiner starts.
func startInbox(t *testing.T, h *Harness) (base string, logs *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base = "http://" + ln.Addr().String()
	cfg := h.Cfg
	cfg.InboxURL = base

	signer, err := decision.LoadFileSigner(cfg.DecisionKeyFile)
	require.NoError(t, err, "the dev stack's decision key (JOINERY_DECISION_KEY_FILE)")
	dir, err := directory.New(run.DirectoryConfig(cfg))
	require.NoError(t, err)
	logs = &syncBuffer{}
	keyer, err := pseudonym.New(cfg.PseudonymKey)
	require.NoError(t, err)
	srv, err := inbox.New(inbox.Config{
		BaseURL: cfg.InboxURL, SessionIdle: cfg.InboxSessionIdle, SessionMax: cfg.InboxSessionMax, HandoverDir: cfg.InboxDir,
	}, inbox.Deps{Auth: dir, Signer: signer, Temporal: h.C, Wrapping: inbox.VaultWrapping{Addr: cfg.VaultAddr},
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Pseudonyms: keyer})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("inbox: %v", err)
		}
		if t.Failed() {
			t.Logf("inbox log:\n%s", logs.String())
		}
	})

	// Links in e-mails and in the joiner's status name this inbox.
	h.Cfg.InboxURL = base
	h.Acts.InboxURL = base
	mn, ok := h.Acts.Notifier.(activities.MailNotifier)
	require.True(t, ok, "the harness's worker notifies by e-mail (JOINERY_NOTIFIER=smtp), got %T", h.Acts.Notifier)
	mn.InboxURL = base
	h.Acts.Notifier = mn
	return base, logs
}

// newBrowser starts headless chromium with a fresh profile and returns the
// browser's root context; each tab made from it with newSession has its own
// cookie jar. Chromium's output is logged if the test fails.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test drives a real browser: chromium is needed at %s (scripts/tools.sh installs it; apt-get install chromium): %v", chromiumPath, err)
	}
	out := &syncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, // --headless
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1024),
		chromedp.CombinedOutput(out),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// Start the browser now, so that a chromium that cannot run fails here
	// with its reason rather than at the first page.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium (%s): %v\n%s", chromiumPath, err, out.String())
	}
	return bctx
}

// session is one person's tab in its own browser context (cookies are not
// shared with other sessions), talking to the inbox at base.
type session struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func newSession(t *testing.T, browser context.Context, base string) *session {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run on a context creates its tab and ties the tab to the
	// context it ran on: do it on the session's own context, not on the
	// per-step deadline contexts that end after each step.
	require.NoError(t, chromedp.Do(ctx), "open a browser tab")
	return &session{t: t, ctx: ctx, base: base}
}

// do runs browser actions with a deadline, failing the test with what was
// being done.
func (s *session) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 60*time.Second)
	defer cancel()
	require.NoError(s.t, chromedp.Do(ctx, actions...), "browser: %s", what)
}

func run1[T any](s *session, what string, a chromedp.Action[T]) T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(s.t, err, "browser: %s", what)
	return v
}

// open navigates to a path of the inbox (or a full URL).
func (s *session) open(pathOrURL string) {
	s.t.Helper()
	u := pathOrURL
	if strings.HasPrefix(u, "/") {
		u = s.base + u
	}
	s.do("open "+u, chromedp.Navigate(u))
}

// main is the visible text of the page's <main>.
func (s *session) main() string {
	s.t.Helper()
	return run1(s, "read the page", chromedp.Text(chromedp.CSS("main")))
}

func (s *session) location() string {
	s.t.Helper()
	return run1(s, "read the location", chromedp.Location())
}

// waitTitle waits until the page's title starts with prefix: after a form
// is submitted the old page stays queryable until the new one arrives, so
// waiting for an element could match the old page.
func (s *session) waitTitle(prefix string) {
	s.t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		title, err := chromedp.Run(ctx, chromedp.Title())
		cancel()
		if err == nil && strings.HasPrefix(title, prefix) {
			return
		}
		last = title
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("browser: page title never became %q (last %q at %s)", prefix, last, s.location())
}

// signIn fills the sign-in form the browser is on, the way a person does.
func (s *session) signIn(user, password string) {
	s.t.Helper()
	s.waitTitle("Sign in")
	s.do("sign in as "+user,
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
	)
	// Signed in: every page then carries the sign-out form with the name.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`form.logout span`)))
		cancel()
		if err == nil && strings.Contains(who, "("+user+")") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("browser: %s is not signed in; page at %s says:\n%s", user, s.location(), s.main())
}

// mailpitMessage is the part of a Mailpit message the test reads.
type mailpitMessage struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Text string `json:"Text"`
}

// approvalMail waits for the approval-request e-mail of one joiner in the
// stack's Mailpit and returns it with its body. Subjects name only the HR
// ID ("Approval needed: joiner <id>"), so the search is by subject.
func approvalMail(t *testing.T, mailpitAPI, hrisID string) mailpitMessage {
	t.Helper()
	subject := "Approval needed: joiner " + hrisID
	var found mailpitMessage
	require.Eventually(t, func() bool {
		resp, err := http.Get(mailpitAPI + "/api/v1/search?query=" + url.QueryEscape(`subject:"`+subject+`"`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var list struct {
			Messages []mailpitMessage `json:"messages"`
		}
		if json.NewDecoder(resp.Body).Decode(&list) != nil {
			return false
		}
		for _, m := range list.Messages {
			if m.Subject == subject {
				found = m
				return true
			}
		}
		return false
	}, 60*time.Second, 250*time.Millisecond, "no %q e-mail reached Mailpit (%s)", subject, mailpitAPI)

	resp, err := http.Get(mailpitAPI + "/api/v1/message/" + url.PathEscape(found.ID))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var full mailpitMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&full))
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, mailpitAPI+"/api/v1/messages", strings.NewReader(`{"IDs":["`+found.ID+`"]}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	return full
}

// inboxLink finds the link to a joiner's inbox page in a mail body.
func inboxLink(body, workflowID string) string {
	return regexp.MustCompile(`https?://[^\s<>"]+/joiners/` + regexp.QuoteMeta(workflowID) + `\b`).FindString(body)
}

// getWithCookie fetches a path of the inbox with only the given session
// cookie and without following redirects: what someone holding a copied
// cookie would get.
func getWithCookie(t *testing.T, base, path, name, value string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: name, Value: value})
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// provisioned waits until the joiner has provisioned everything and returns
// its approvals: from its result once it completed (h.Result), or from its
// status while a workflow version that holds an employee joiner open until
// the start date keeps it in Provisioned (that stage is only ever reached
// after every provisioning step succeeded).
func provisioned(t *testing.T, h *Harness, id string) []workflows.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		st, res, _, err := run.Status(ctx, h.C, id)
		if err == nil && res != nil {
			require.Equal(t, workflows.OutcomeCompleted, res.Outcome, res.Error)
			return res.Approvals
		}
		if err == nil && st.Stage == "Provisioned" {
			require.NotEmpty(t, st.DN, "a provisioned joiner has its directory entry")
			return st.Approvals
		}
		require.NoError(t, ctx.Err(), "joiner %s never finished provisioning (last stage %s, err %v)", id, st.Stage, err)
		time.Sleep(200 * time.Millisecond)
	}
}

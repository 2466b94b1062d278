package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// A person approves a joiner in a real browser, the way they would: the
// approval e-mail links to the joiner's page, the inbox asks them to sign
// in with their directory password, "Waiting for me" lists the joiner, its
// page shows the plan, and the decision they submit is signed by the inbox
// and verified by the workflow. Someone else signed in to the same inbox
// sees none of it, cannot decide it with a form post of their own, and
// their cookie is worthless once they sign out.
//
// Chromium is the real one (headless, no network beyond loopback); the
// inbox is built as `starter serve` builds it and signs with the dev
// stack's decision key, which the harness's worker trusts.
func TestIntegrationApprovalInABrowser(t *testing.T) {
	h := NewHarness(t)
	base, logs := startInbox(t, h)
	browser := newBrowser(t)

	// Two joiners for ada: she approves the first; the second stays
	// waiting, so that what alan tries later targets a live decision.
	first := h.Hire("Brow", "Ser")
	second := h.Hire("Still", "Waiting")
	h.Start(first)
	h.Start(second)
	wfFirst, wfSecond := workflows.JoinerWorkflowID(first), workflows.JoinerWorkflowID(second)
	st := h.WaitForApproval(first)
	stSecond := h.WaitForApproval(second)
	require.Equal(t, "ada.lovelace", st.Plan.Approval.Approver)

	// The approval request reaches ada by e-mail, with a link to the page.
	msg := approvalMail(t, h.EP.MailpitAPIURL, first)
	require.NotEmpty(t, msg.To)
	require.True(t, strings.HasPrefix(msg.To[0].Address, "ada.lovelace@"), "sent to ada: %+v", msg.To)
	link := inboxLink(msg.Text, wfFirst)
	require.Equal(t, base+"/joiners/"+wfFirst, link, "the e-mail links to the joiner's inbox page:\n%s", msg.Text)

	// The link asks her to sign in, then opens the joiner's page.
	ada := newSession(t, browser, base)
	ada.open(link)
	require.Contains(t, ada.location(), "/login?next=", "the link needs a signed-in person")
	ada.signIn("ada.lovelace", "dev-ada-pass")
	require.Equal(t, link, ada.location(), "after sign-in the link's page opens")
	ada.waitTitle(wfFirst)

	// "Waiting for me" lists both joiners (the deciders search attribute
	// can trail the workflow by a moment, so reload until it shows).
	ada.do("open Waiting for me", chromedp.Click(chromedp.CSS(`header nav a[href="/"]`)))
	ada.waitTitle("Waiting for me")
	require.Eventually(t, func() bool {
		page := ada.main()
		if strings.Contains(page, wfFirst) && strings.Contains(page, wfSecond) {
			return true
		}
		ada.do("reload", chromedp.Reload())
		return false
	}, time.Minute, 500*time.Millisecond, "both joiners wait for ada")
	require.Contains(t, ada.main(), "approve or reject")

	// Her joiner's page shows the plan she is asked to approve.
	ada.do("open the joiner", chromedp.Click(chromedp.CSS(`main a[href="/joiners/`+wfFirst+`"]`)))
	ada.waitTitle(wfFirst)
	plan := ada.main()
	require.Contains(t, plan, "Username candidates")
	for _, r := range st.Plan.UsernameRules[:min(3, len(st.Plan.UsernameRules))] {
		require.Contains(t, plan, r.Candidate+"\t"+r.Pattern, "candidate %s with the pattern that made it", r.Candidate)
	}
	require.NotEmpty(t, st.Plan.Groups)
	for _, g := range st.Plan.Groups {
		require.Contains(t, plan, g.Group+"\t"+g.Rule, "group %s with the rule that granted it", g.Group)
	}
	require.Contains(t, plan, "Policy version\t"+st.PolicyVersion)
	require.Contains(t, plan, "Your decision is signed for plan "+st.PlanHash)
	shot := run1(ada, "screenshot the plan", chromedp.FullScreenshot(100))
	shotPath := filepath.Join(t.TempDir(), "plan.png")
	require.NoError(t, os.WriteFile(shotPath, shot, 0o644))
	t.Logf("plan page screenshot: %s (%d bytes)", shotPath, len(shot))
	if dir := os.Getenv("JOINERY_E2E_SCREENSHOTS"); dir != "" {
		// The temp dir goes with the test; a person who wants to look at
		// the page afterwards names a directory that stays.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "inbox-plan.png"), shot, 0o644))
	}

	// She approves with a comment; the joiner answers through the inbox.
	const comment = "welcome aboard, from the browser"
	ada.do("approve",
		chromedp.SendKeys(chromedp.CSS(`form.decide textarea[name=comment]`), comment),
		chromedp.Click(chromedp.CSS(`form.decide button[value=approve]`)),
	)
	ada.waitTitle("Decision recorded")
	require.Contains(t, ada.main(), "the joiner answered: approved")

	approvals := provisioned(t, h, first)
	var counted []workflows.Decision
	for _, d := range approvals {
		if d.Refused == "" {
			counted = append(counted, d)
		}
	}
	require.Len(t, counted, 1, "%+v", approvals)
	require.True(t, counted[0].Signed, "the workflow verified the inbox's signature")
	require.Equal(t, "ada.lovelace", counted[0].Approver)
	require.True(t, counted[0].Approved)
	require.Equal(t, comment, counted[0].Comment)
	require.Contains(t, counted[0].Via, "inbox-web")

	// alan signs in to the same inbox: ada's joiners are not his to see.
	alan := newSession(t, browser, base)
	alan.open("/")
	alan.signIn("alan.turing", "dev-alan-pass")
	alan.waitTitle("Waiting for me")
	page := alan.main()
	require.NotContains(t, page, wfFirst)
	require.NotContains(t, page, wfSecond)
	alan.open("/joiners/" + wfSecond)
	alan.waitTitle("Not found")
	require.NotContains(t, alan.main(), stSecond.PlanHash, "nothing of the plan leaks")

	// He crafts the approve form post himself, from the inbox's own origin
	// with his live session cookie and his own valid CSRF token: the inbox
	// refuses it as someone else's joiner and signs nothing.
	type answer struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	crafted := run1(alan, "post a crafted decision", chromedp.Evaluate[answer](`(async () => {
		const csrf = document.querySelector('form.logout input[name=csrf]').value;
		const r = await fetch('/joiners/`+wfSecond+`/decision', {method: 'POST', credentials: 'same-origin',
			headers: {'Content-Type': 'application/x-www-form-urlencoded'},
			body: new URLSearchParams({csrf: csrf, action: 'approve', planHash: '`+stSecond.PlanHash+`', comment: 'approved by alan'})});
		return {status: r.status, body: await r.text()};
	})()`, chromedp.EvalAwaitPromise))
	require.Equal(t, http.StatusNotFound, crafted.Status, "refused like a joiner that does not exist (not a CSRF 403: the token was his and valid)\n%s", crafted.Body)
	require.Contains(t, crafted.Body, "There is no such joiner waiting for you.")
	require.Contains(t, logs.String(), "decision refused: not a decider of this joiner")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now, _, _, err := run.Status(ctx, h.C, second)
	require.NoError(t, err)
	require.Equal(t, workflows.StageAwaitingApproval, now.Stage, "nothing changed")
	require.Empty(t, now.Approvals, "no decision reached the joiner")
	require.Zero(t, now.Refused)

	// Sign-out ends the session on the server: the old cookie opens nothing.
	cookies, err := chromedp.Call(alan.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	require.NoError(t, err)
	var sid string
	for _, c := range cookies.Cookies {
		if c.Name == "joinery_session" {
			sid = c.Value
			require.True(t, c.HTTPOnly, "page scripts cannot read the session cookie")
			require.Equal(t, network.CookieSameSiteStrict, c.SameSite)
		}
	}
	require.NotEmpty(t, sid, "alan's browser holds a session cookie: %+v", cookies.Cookies)
	resp := getWithCookie(t, base, "/", "joinery_session", sid)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the cookie opens the inbox while signed in")
	alan.do("sign out", chromedp.Click(chromedp.CSS(`form.logout button[type=submit]`)))
	alan.waitTitle("Sign in")
	resp = getWithCookie(t, base, "/", "joinery_session", sid)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the old cookie no longer opens the inbox")
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/login"), resp.Header.Get("Location"))
	alan.open("/")
	alan.waitTitle("Sign in")
}

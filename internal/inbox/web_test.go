package inbox

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/workflows"
)

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, p := range []page{b.get("/login"), b.get("/healthz"), b.get("/"), b.get("/joiners/joiner-1"), b.post("/logout", nil)} {
		require.Contains(t, p.Header.Get("Content-Security-Policy"), "default-src 'self'")
		require.Contains(t, p.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
		require.Equal(t, "DENY", p.Header.Get("X-Frame-Options"))
		require.Equal(t, "nosniff", p.Header.Get("X-Content-Type-Options"))
		require.Equal(t, "no-store", p.Header.Get("Cache-Control"))
	}
	require.Equal(t, "ok\n", b.get("/healthz").Body)
}

func TestSessionCookieAttributes(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.login("ada.lovelace", "dev-ada-pass")
	var c *http.Cookie
	for _, k := range (&http.Response{Header: p.Header}).Cookies() {
		if k.Name == "joinery_session" && k.Value != "" {
			c = k
		}
	}
	require.NotNil(t, c)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.False(t, c.Secure, "http base URL")
	require.Len(t, c.Value, 43, "256 random bits, base64url")

	// Over https the cookie is Secure and __Host- prefixed.
	s, err := New(Config{BaseURL: "https://inbox.example"}, Deps{Auth: e.dir, Signer: e.signer, Temporal: e.temporal, Pseudonyms: testPseudonyms(t)})
	require.NoError(t, err)
	ck := s.cookie(s.sessionCookieName(), "x", 0)
	require.True(t, ck.Secure)
	require.Equal(t, "__Host-joinery_session", ck.Name)
}

func TestSignInShowsWaitingAndThePlan(t *testing.T) {
	e := newEnv(t)
	e.temporal.put("joiner-200", awaiting(t, "200"))
	other := awaiting(t, "201")
	other.deciders, other.status.Approvers = []string{"grace.hopper"}, []string{"grace.hopper"}
	e.temporal.put("joiner-201", other)

	b := e.browser()
	require.Equal(t, http.StatusSeeOther, b.get("/").Code, "signed out: to the sign-in form")
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	home := b.get("/")
	require.Equal(t, http.StatusOK, home.Code)
	require.Contains(t, home.Body, "joiner-200")
	require.NotContains(t, home.Body, "joiner-201", "grace's joiner is not ada's business")
	// Found by her pseudonym (what joiners publish) or, for joiners planned
	// before pseudonyms, her username.
	require.Contains(t, e.temporal.queries[0], "(JoinerDeciders = '"+testPseudonyms(t).Of("ada.lovelace")+"' OR JoinerDeciders = 'ada.lovelace') AND ExecutionStatus = 'Running'")

	jp := b.get("/joiners/joiner-200")
	require.Equal(t, http.StatusOK, jp.Code)
	st := awaiting(t, "200").status
	for _, want := range []string{st.PlanHash, "default@2026-11-30", "john.smith", "{first}.{last}", "engineering",
		"worker.department == &#34;Engineering&#34;", "workEmail", "Approve", "Reject"} {
		require.Contains(t, jp.Body, want)
	}
}

// The adversary: a signed-in person (grace) approving someone else's
// joiner, by page and by a crafted post with her own valid CSRF token.
func TestOtherPeoplesJoinerIsNotFoundAndNothingIsSigned(t *testing.T) {
	e := newEnv(t)
	e.temporal.put("joiner-200", awaiting(t, "200"))
	b := e.browser()
	b.mustLogin("grace.hopper", "dev-grace-pass")
	home := b.get("/")
	csrf := csrfOf(t, home)

	notMine := b.get("/joiners/joiner-200")
	missing := b.get("/joiners/joiner-999")
	require.Equal(t, http.StatusNotFound, notMine.Code)
	require.Equal(t, http.StatusNotFound, missing.Code)
	require.Equal(t, missing.Body, notMine.Body, "not yours and does not exist read the same")

	p := b.post("/joiners/joiner-200/decision", url.Values{"csrf": {csrf}, "action": {"approve"}})
	require.Equal(t, http.StatusNotFound, p.Code)
	require.Equal(t, 0, e.signer.Count())
	ups, sigs := e.temporal.sent()
	require.Empty(t, ups)
	require.Empty(t, sigs)
}

func TestApproveSignsForThePlanShown(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "200")
	e.temporal.put("joiner-200", j)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	jp := b.get("/joiners/joiner-200")
	p := b.post("/joiners/joiner-200/decision", url.Values{"csrf": {csrfOf(t, jp)}, "action": {"approve"},
		"comment": {"welcome aboard"}, "planHash": {j.status.PlanHash}})
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	require.Contains(t, p.Body, "approved")

	ups, _ := e.temporal.sent()
	require.Len(t, ups, 1)
	require.Equal(t, workflows.UpdateDecide, ups[0].UpdateName)
	require.Equal(t, client.WorkflowUpdateStageCompleted, ups[0].WaitForStage)
	sig := ups[0].Args[0].(workflows.ApprovalSignal)
	require.NotNil(t, sig.Signed)
	require.True(t, sig.Approve)
	d, err := decision.Check([]decision.PublicKey{e.signer.PublicKey()}, *sig.Signed, decision.Expect{
		WorkflowID: "joiner-200", PlanHash: j.status.PlanHash, PolicyVersion: j.status.PolicyVersion,
		Now: e.clock.Now(), MaxAge: 15 * time.Minute})
	require.NoError(t, err)
	require.Equal(t, "ada.lovelace", d.Approver)
	require.Equal(t, decision.ActionApprove, d.Action)
	require.Equal(t, "welcome aboard", d.Comment)
	require.Equal(t, ViaWeb, d.Via)
	require.Len(t, d.Nonce, 32, "128 random bits, hex")
}

func TestRefusedBeforeSigning(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*fakeJoiner)
		form   url.Values
		code   int
	}{
		"plan does not hash to the recorded hash": {func(j *fakeJoiner) { j.status.Plan.Groups = append(j.status.Plan.Groups, j.status.Plan.Groups[0]) }, nil, http.StatusConflict},
		"plan changed since the page was shown":   {nil, url.Values{"planHash": {"sha256:old"}}, http.StatusConflict},
		"closed joiner":                           {func(j *fakeJoiner) { j.running = false }, nil, http.StatusConflict},
		"already approved by this person": {func(j *fakeJoiner) {
			j.status.Approvals = []workflows.Decision{{Approver: "ada.lovelace", Approved: true}}
		}, nil, http.StatusConflict},
		"comment too long":      {nil, url.Values{"comment": {strings.Repeat("x", 1001)}}, http.StatusBadRequest},
		"unknown action":        {nil, url.Values{"action": {"approve-all"}}, http.StatusBadRequest},
		"extend by a non-owner": {nil, url.Values{"action": {"extend"}, "endDate": {"2027-01-01"}}, http.StatusConflict},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			j := awaiting(t, "200")
			if tc.mutate != nil {
				tc.mutate(j)
			}
			e.temporal.put("joiner-200", j)
			b := e.browser()
			b.mustLogin("ada.lovelace", "dev-ada-pass")
			form := url.Values{"csrf": {csrfOf(t, b.get("/"))}, "action": {"approve"}}
			for k, v := range tc.form {
				form[k] = v
			}
			p := b.post("/joiners/joiner-200/decision", form)
			require.Equal(t, tc.code, p.Code, p.Body)
			require.Equal(t, 0, e.signer.Count(), "nothing signed")
			ups, sigs := e.temporal.sent()
			require.Empty(t, ups)
			require.Empty(t, sigs)
		})
	}
}

func TestSecondApproverDecidesOnce(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "nhi-x-production")
	j.status.SecondApprover = "grace.hopper"
	j.deciders = append(j.deciders, "grace.hopper")
	e.temporal.put("joiner-nhi-x-production", j)
	b := e.browser()
	b.mustLogin("grace.hopper", "dev-grace-pass")
	require.Contains(t, b.get("/").Body, "joiner-nhi-x-production")
	p := b.post("/joiners/joiner-nhi-x-production/decision", url.Values{"csrf": {csrfOf(t, b.get("/"))}, "action": {"approve"}})
	require.Equal(t, http.StatusOK, p.Code, p.Body)

	j.status.Approvals = []workflows.Decision{{Approver: "grace.hopper", Approved: true, Signed: true}}
	e.temporal.put("joiner-nhi-x-production", j)
	require.NotContains(t, b.get("/").Body, "joiner-nhi-x-production", "her approval counted: nothing left for her")
	p = b.post("/joiners/joiner-nhi-x-production/decision", url.Values{"csrf": {csrfOf(t, b.get("/"))}, "action": {"approve"}})
	require.Equal(t, http.StatusConflict, p.Code)
	require.Equal(t, 1, e.signer.Count())
}

func TestDelegatesShareOneVote(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "210")
	j.status.Approvers = []string{"ada.lovelace", "alan.turing"}
	j.status.Approvals = []workflows.Decision{{Approver: "alan.turing", Approved: true, Signed: true}}
	e.temporal.put("joiner-210", j)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	require.NotContains(t, b.get("/").Body, "joiner-210", "her delegate approved: nothing left for her")
	jp := b.get("/joiners/joiner-210")
	require.Equal(t, http.StatusOK, jp.Code)
	require.NotContains(t, jp.Body, `value="approve"`)
}

func TestOwnerExtendsActiveAccess(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "nhi-bot-staging")
	j.status.Stage, j.status.Owner, j.status.EndDate, j.status.Approvers = workflows.StageActive, "ada.lovelace", "2027-01-31", nil
	j.status.Plan.HireDate, j.status.Plan.EndDate, j.status.Plan.MaxLifetime = "2026-12-01", "2027-01-31", 365*24*time.Hour
	j.status.PlanHash, _ = decision.PlanHash(j.status.Plan)
	e.temporal.put("joiner-nhi-bot-staging", j)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	require.Contains(t, b.get("/").Body, "extend access")
	jp := b.get("/joiners/joiner-nhi-bot-staging")
	require.Contains(t, jp.Body, `name="endDate"`)
	require.NotContains(t, jp.Body, `value="approve"`)

	csrf := csrfOf(t, jp)
	// Past the kind's lifetime: refused before signing.
	p := b.post("/joiners/joiner-nhi-bot-staging/decision", url.Values{"csrf": {csrf}, "action": {"extend"}, "endDate": {"2028-06-30"}})
	require.Equal(t, http.StatusConflict, p.Code)
	require.Equal(t, 0, e.signer.Count())

	p = b.post("/joiners/joiner-nhi-bot-staging/decision", url.Values{"csrf": {csrf}, "action": {"extend"}, "endDate": {"2027-03-31"}, "comment": {"still needed"}})
	require.Equal(t, http.StatusAccepted, p.Code, p.Body)
	_, sigs := e.temporal.sent()
	require.Len(t, sigs, 1)
	require.Equal(t, workflows.SignalExtend, sigs[0].Name)
	ext := sigs[0].Arg.(workflows.ExtendSignal)
	d, err := decision.Verify([]decision.PublicKey{e.signer.PublicKey()}, *ext.Signed)
	require.NoError(t, err)
	require.Equal(t, decision.ActionExtend, d.Action)
	require.Equal(t, "2027-03-31", d.EndDate)

	// Approve/reject do not apply to active access.
	p = b.post("/joiners/joiner-nhi-bot-staging/decision", url.Values{"csrf": {csrf}, "action": {"approve"}})
	require.Equal(t, http.StatusConflict, p.Code)
}

// The adversary: a page elsewhere that makes a signed-in browser post.
func TestCrossSitePostsAreRefused(t *testing.T) {
	e := newEnv(t)
	e.temporal.put("joiner-200", awaiting(t, "200"))
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	csrf := csrfOf(t, b.get("/"))

	for name, tc := range map[string]struct {
		origin string
		form   url.Values
	}{
		"no CSRF token":        {e.ts.URL, url.Values{"action": {"approve"}}},
		"wrong CSRF token":     {e.ts.URL, url.Values{"action": {"approve"}, "csrf": {"guessed"}}},
		"forged Origin":        {"https://evil.example", url.Values{"action": {"approve"}, "csrf": {csrf}}},
		"no Origin or Referer": {"", url.Values{"action": {"approve"}, "csrf": {csrf}}},
	} {
		t.Run(name, func(t *testing.T) {
			b.origin = tc.origin
			p := b.post("/joiners/joiner-200/decision", tc.form)
			require.Equal(t, http.StatusForbidden, p.Code, p.Body)
		})
	}
	b.origin = e.ts.URL
	require.Equal(t, 0, e.signer.Count())
	ups, _ := e.temporal.sent()
	require.Empty(t, ups)

	// A Referer from the inbox itself is accepted where Origin is missing.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/joiners/joiner-200/decision",
		strings.NewReader(url.Values{"action": {"approve"}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", e.ts.URL+"/joiners/joiner-200")
	require.Equal(t, http.StatusOK, b.do(req).Code)
}

// Login CSRF: a cross-site form cannot sign the victim in as the attacker.
func TestLoginFormNeedsItsOwnToken(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.post("/login", url.Values{"username": {"ada.lovelace"}, "password": {"dev-ada-pass"}, "csrf": {"x"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	b.origin = "https://evil.example"
	form := b.get("/login")
	p = b.post("/login", url.Values{"csrf": {csrfOf(t, form)}, "username": {"ada.lovelace"}, "password": {"dev-ada-pass"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	require.Equal(t, 0, e.dir.Calls(), "the directory was never asked")
}

// The adversary: someone who copied a session cookie, replaying it after
// the owner signed out.
func TestLogoutEndsTheSessionForGood(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	stolen := *b.sessionCookie()
	p := b.post("/logout", url.Values{"csrf": {csrfOf(t, b.get("/"))}})
	require.Equal(t, http.StatusSeeOther, p.Code)
	require.Equal(t, 0, e.srv.sessions.len())

	thief := e.browser()
	u, _ := url.Parse(e.ts.URL)
	thief.c.Jar.SetCookies(u, []*http.Cookie{&stolen})
	require.Equal(t, http.StatusSeeOther, thief.get("/").Code, "back to sign-in")
	require.Equal(t, http.StatusUnauthorized, thief.post("/logout", url.Values{"csrf": {"x"}}).Code)
}

func TestSessionRotatesAtSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	first := b.sessionCookie().Value
	// Signing in again in a browser that still holds a live session.
	again := e.browser()
	form := again.get("/login")
	u, _ := url.Parse(e.ts.URL)
	again.c.Jar.SetCookies(u, []*http.Cookie{b.sessionCookie()})
	p := again.post("/login", url.Values{"csrf": {csrfOf(t, form)}, "username": {"ada.lovelace"}, "password": {"dev-ada-pass"}})
	require.Equal(t, http.StatusSeeOther, p.Code)
	second := again.sessionCookie().Value
	require.NotEqual(t, first, second)
	_, ok := e.srv.sessions.get(first, e.clock.Now(), time.Hour, time.Hour)
	require.False(t, ok, "the old session ID is dead")

	// A planted (fixated) cookie value never becomes a session.
	victim := e.browser()
	victim.c.Jar.SetCookies(u, []*http.Cookie{{Name: "joinery_session", Value: "planted-by-attacker", Path: "/"}})
	victim.mustLogin("ada.lovelace", "dev-ada-pass")
	require.NotEqual(t, "planted-by-attacker", victim.sessionCookie().Value)
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	e.clock.Add(29 * time.Minute)
	require.Equal(t, http.StatusOK, b.get("/").Code)
	e.clock.Add(29 * time.Minute)
	require.Equal(t, http.StatusOK, b.get("/").Code, "activity keeps it alive")
	e.clock.Add(30 * time.Minute)
	require.Equal(t, http.StatusSeeOther, b.get("/").Code, "idle for 30 minutes: ended")

	b.mustLogin("ada.lovelace", "dev-ada-pass")
	for i := 0; i < 8*60/20-1; i++ {
		e.clock.Add(20 * time.Minute)
		require.Equal(t, http.StatusOK, b.get("/").Code)
	}
	e.clock.Add(20 * time.Minute)
	require.Equal(t, http.StatusSeeOther, b.get("/").Code, "8 hours after sign-in: ended however active")
}

// The adversary: a password-guessing loop.
func TestPasswordGuessingIsThrottled(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := range 5 {
		p := b.login("ada.lovelace", "guess"+string(rune('a'+i)))
		require.Equal(t, http.StatusUnauthorized, p.Code)
		require.Contains(t, p.Body, "Invalid username or password")
	}
	calls := e.dir.Calls()
	p := b.login("ada.lovelace", "dev-ada-pass")
	require.Equal(t, http.StatusTooManyRequests, p.Code, "even the right password waits")
	require.Equal(t, "900", p.Header.Get("Retry-After"))
	require.Equal(t, calls, e.dir.Calls(), "a throttled attempt never reaches the directory")

	e.clock.Add(15 * time.Minute)
	b.mustLogin("ada.lovelace", "dev-ada-pass")
}

func TestGuessingManyUsernamesFromOneAddressIsThrottled(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, u := range []string{"a1", "a2", "a3", "a4", "a5"} {
		require.Equal(t, http.StatusUnauthorized, b.login(u, "x").Code)
	}
	require.Equal(t, http.StatusTooManyRequests, b.login("grace.hopper", "dev-grace-pass").Code)
}

func TestDirectoryDownIsNotAFailedSignIn(t *testing.T) {
	e := newEnv(t)
	e.dir.down = true
	b := e.browser()
	for range 6 {
		p := b.login("ada.lovelace", "dev-ada-pass")
		require.Equal(t, http.StatusServiceUnavailable, p.Code)
		require.NotContains(t, p.Body, "Invalid username")
	}
	e.dir.down = false
	b.mustLogin("ada.lovelace", "dev-ada-pass")
}

func TestRedirectAfterSignInStaysLocal(t *testing.T) {
	for in, want := range map[string]string{"/joiners/joiner-1": "/joiners/joiner-1", "//evil.example/": "/",
		"https://evil.example/": "/", "/\\evil.example": "/", "": "/"} {
		require.Equal(t, want, localPath(in), in)
	}
}

func TestBodiesAreBounded(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	form := b.get("/login")
	p := b.post("/login", url.Values{"csrf": {csrfOf(t, form)}, "username": {"ada.lovelace"}, "password": {strings.Repeat("x", 100<<10)}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Equal(t, 0, e.dir.Calls())
}

func TestPastDecisions(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "300")
	j.running, j.status.Stage = false, workflows.StageCompleted
	j.decidedBy = []string{"ada.lovelace"}
	j.status.Approvals = []workflows.Decision{{Approver: "ada.lovelace", Approved: true, Comment: "ok", Via: "update/inbox-web", Signed: true}}
	// Closed: the page reads its result from history, not the status query.
	j.result = &workflows.JoinerResult{HRISID: "300", Stage: workflows.StageCompleted, Approvals: j.status.Approvals}
	e.temporal.put("joiner-300", j)
	gone := awaiting(t, "301")
	gone.running, gone.decidedBy = false, []string{"ada.lovelace"}
	e.temporal.put("joiner-301", gone)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	p := b.get("/decisions")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "joiner-300")
	require.Contains(t, p.Body, "approved (signed)")
	require.Contains(t, p.Body, "joiner-301</td><td colspan=\"5\">record not available now")
	// Her own past joiner's page is readable, with nothing to decide.
	jp := b.get("/joiners/joiner-300")
	require.Equal(t, http.StatusOK, jp.Code)
	require.NotContains(t, jp.Body, `value="approve"`)
}

func TestQuoteEscapes(t *testing.T) {
	require.Equal(t, `'o\'brien\\'`, quote(`o'brien\`))
}

// What HR, the policy or a person typed lands escaped: with no script
// allowed by the CSP, and none injectable, a page cannot be turned against
// the person reading it.
func TestPagesEscapeWhatOthersWrote(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "200")
	j.status.Plan.Groups[1].Condition = `</code><script>alert(1)</script>`
	j.status.Approvals = []workflows.Decision{{Approver: "claimed:<img src=x onerror=alert(2)>", Refused: "unsigned"}}
	j.status.PlanHash, _ = decision.PlanHash(j.status.Plan)
	e.temporal.put("joiner-200", j)
	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	p := b.get("/joiners/joiner-200")
	require.Equal(t, http.StatusOK, p.Code)
	require.NotContains(t, p.Body, "<script>")
	require.NotContains(t, p.Body, "<img")
	require.Contains(t, p.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Equal(t, http.StatusNotFound, b.get("/joiners/not-a-joiner").Code)
}

// Joiners publish pseudonyms, not usernames: ada finds hers by her
// pseudonym, and another person's pseudonym finds nothing for her.
func TestWaitingFoundByPseudonym(t *testing.T) {
	e := newEnv(t)
	k := testPseudonyms(t)
	mine := awaiting(t, "300")
	mine.deciders = []string{k.Of("ada.lovelace")}
	e.temporal.put("joiner-300", mine)
	theirs := awaiting(t, "301")
	theirs.deciders, theirs.status.Approvers = []string{k.Of("grace.hopper")}, []string{"grace.hopper"}
	e.temporal.put("joiner-301", theirs)
	// A joiner that lists ada's pseudonym but whose own status does not
	// name her (a stale attribute) is not hers: the status decides.
	stale := awaiting(t, "302")
	stale.deciders, stale.status.Approvers = []string{k.Of("ada.lovelace")}, []string{"grace.hopper"}
	e.temporal.put("joiner-302", stale)

	b := e.browser()
	b.mustLogin("ada.lovelace", "dev-ada-pass")
	home := b.get("/")
	require.Equal(t, http.StatusOK, home.Code)
	require.Contains(t, home.Body, "joiner-300")
	require.NotContains(t, home.Body, "joiner-301")
	require.NotContains(t, home.Body, "joiner-302")
	for _, q := range e.temporal.queries {
		require.NotContains(t, q, k.Of("grace.hopper"))
	}
}

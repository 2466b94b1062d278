package inbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/workflows"
)

type apiAnswer struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (e *env) api(method, path, user, pass, body string) apiAnswer {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{Code: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

func TestAPIAuthentication(t *testing.T) {
	e := newEnv(t)
	a := e.api("GET", "/api/v1/waiting", "", "", "")
	require.Equal(t, http.StatusUnauthorized, a.Code)
	require.False(t, strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Basic"), "no browser password prompt (see apiChallenge)")
	require.NotEmpty(t, a.Header.Get("WWW-Authenticate"))
	require.Equal(t, http.StatusUnauthorized, e.api("GET", "/api/v1/waiting", "ada.lovelace", "wrong", "").Code)
	require.Equal(t, http.StatusUnauthorized, e.api("GET", "/api/v1/waiting", "ada.lovelace", "", "").Code)
	require.Equal(t, http.StatusOK, e.api("GET", "/api/v1/waiting", "ada.lovelace", "dev-ada-pass", "").Code)
	require.Empty(t, e.api("GET", "/api/v1/waiting", "ada.lovelace", "dev-ada-pass", "").Header.Values("Set-Cookie"), "no cookies")
}

// The guessing loop through the API shares the sign-in form's budget.
func TestAPIGuessingIsThrottled(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, e.api("GET", "/api/v1/waiting", "ada.lovelace", "guess", "").Code)
	}
	a := e.api("GET", "/api/v1/waiting", "ada.lovelace", "dev-ada-pass", "")
	require.Equal(t, http.StatusTooManyRequests, a.Code)
	require.NotEmpty(t, a.Header.Get("Retry-After"))
	require.Contains(t, a.Body["error"], "too many")
	b := e.browser()
	require.Equal(t, http.StatusTooManyRequests, b.login("ada.lovelace", "dev-ada-pass").Code)
}

// The adversary: a page elsewhere making a browser that holds the person's
// Basic credentials post to the API.
func TestAPICrossSitePostsAreRefused(t *testing.T) {
	e := newEnv(t)
	e.temporal.put("joiner-200", awaiting(t, "200"))
	post := func(ct, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/api/v1/joiners/joiner-200/decision", strings.NewReader(`{"action":"approve","wait":true}`))
		req.SetBasicAuth("ada.lovelace", "dev-ada-pass")
		req.Header.Set("Content-Type", ct)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnsupportedMediaType, post("text/plain", ""))
	require.Equal(t, http.StatusUnsupportedMediaType, post("application/x-www-form-urlencoded", ""))
	require.Equal(t, http.StatusForbidden, post("application/json", "https://evil.example"))
	require.Equal(t, 0, e.signer.Count())
	require.Equal(t, http.StatusOK, post("application/json; charset=utf-8", ""))
}

func TestAPIWaitingAndDecide(t *testing.T) {
	e := newEnv(t)
	j := awaiting(t, "200")
	e.temporal.put("joiner-200", j)

	a := e.api("GET", "/api/v1/waiting", "ada.lovelace", "dev-ada-pass", "")
	require.Equal(t, http.StatusOK, a.Code)
	var rows []WaitingJoiner
	require.NoError(t, json.Unmarshal([]byte(a.Raw), &rows))
	require.Len(t, rows, 1)
	require.Equal(t, WaitingJoiner{WorkflowID: "joiner-200", HRISID: "200", Kind: "employee", Stage: workflows.StageAwaitingApproval,
		PolicyVersion: j.status.PolicyVersion, PlanHash: j.status.PlanHash, Actions: []string{"approve", "reject"}}, rows[0])

	// wait: the decide update, the joiner's answer.
	a = e.api("POST", "/api/v1/joiners/joiner-200/decision", "ada.lovelace", "dev-ada-pass", `{"action":"approve","comment":"ok","wait":true}`)
	require.Equal(t, http.StatusOK, a.Code, a.Raw)
	require.Equal(t, "approved", a.Body["outcome"])
	ups, _ := e.temporal.sent()
	require.Len(t, ups, 1)
	d, err := decision.Verify([]decision.PublicKey{e.signer.PublicKey()}, *ups[0].Args[0].(workflows.ApprovalSignal).Signed)
	require.NoError(t, err)
	require.Equal(t, ViaAPI, d.Via)
	require.Equal(t, "ada.lovelace", d.Approver)

	// no wait: the reject signal.
	a = e.api("POST", "/api/v1/joiners/joiner-200/decision", "ada.lovelace", "dev-ada-pass", `{"action":"reject","wait":false}`)
	require.Equal(t, http.StatusAccepted, a.Code, a.Raw)
	require.Equal(t, OutcomeSent, a.Body["outcome"])
	_, sigs := e.temporal.sent()
	require.Len(t, sigs, 1)
	require.Equal(t, workflows.SignalReject, sigs[0].Name)
	require.NotNil(t, sigs[0].Arg.(workflows.ApprovalSignal).Signed)
}

func TestAPIRefusals(t *testing.T) {
	e := newEnv(t)
	e.temporal.put("joiner-200", awaiting(t, "200"))

	// The joiner's own refusal comes back as 409 with its reason.
	e.temporal.refuse = temporal.NewApplicationError("refused: decision is stale", "DecisionRefused")
	a := e.api("POST", "/api/v1/joiners/joiner-200/decision", "ada.lovelace", "dev-ada-pass", `{"action":"approve","wait":true}`)
	require.Equal(t, http.StatusConflict, a.Code, a.Raw)
	require.Equal(t, OutcomeRefused, a.Body["outcome"])
	require.Contains(t, a.Body["message"], "stale")
	signed := e.signer.Count()

	// Someone else's joiner, and one that does not exist: one answer.
	a = e.api("POST", "/api/v1/joiners/joiner-200/decision", "grace.hopper", "dev-grace-pass", `{"action":"approve","wait":true}`)
	require.Equal(t, http.StatusNotFound, a.Code)
	b := e.api("POST", "/api/v1/joiners/joiner-404/decision", "grace.hopper", "dev-grace-pass", `{"action":"approve","wait":true}`)
	require.Equal(t, a.Raw, b.Raw)
	require.Equal(t, http.StatusNotFound, e.api("POST", "/api/v1/joiners/..%2f..%2fx/decision", "ada.lovelace", "dev-ada-pass", `{"action":"approve"}`).Code)

	for _, body := range []string{`not json`, `{"action":"approve","approver":"grace.hopper"}`, `{"action":"approve"} {"action":"reject"}`,
		`{"action":"launch"}`, `{"action":"approve","endDate":"2027-01-01"}`} {
		a := e.api("POST", "/api/v1/joiners/joiner-200/decision", "ada.lovelace", "dev-ada-pass", body)
		require.Equal(t, http.StatusBadRequest, a.Code, body)
		require.NotEmpty(t, a.Body["error"], body)
	}
	big := `{"action":"approve","comment":"` + strings.Repeat("x", 70<<10) + `"}`
	require.Equal(t, http.StatusRequestEntityTooLarge, e.api("POST", "/api/v1/joiners/joiner-200/decision", "ada.lovelace", "dev-ada-pass", big).Code)
	require.Equal(t, signed, e.signer.Count(), "no refused request signed anything")
}

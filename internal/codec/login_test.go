package codec

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func loginServer(t *testing.T, c *Codec) (*httptest.Server, *server) {
	t.Helper()
	h, err := NewServer(ServerOptions{Codec: c, Authorize: BearerTokens(testToken), AllowedOrigin: uiOrigin, BrowserLogin: true})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h.(*server)
}

// browser is an HTTP client with a cookie jar, like the operator's browser.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar}
}

func postForm(t *testing.T, b *http.Client, u, origin, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := b.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// decodeAsUI posts to /decode the way the Web UI does with "include
// cross-origin credentials": from the UI's origin, cookies included, no
// Authorization header.
func decodeAsUI(t *testing.T, b *http.Client, srvURL string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srvURL+"/decode", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("X-Namespace", "default")
	resp, err := b.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		var out commonpb.Payloads
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, protojson.Unmarshal(raw, &out))
		require.Contains(t, string(out.Payloads[0].GetData()), "Grace")
	}
	return resp.StatusCode
}

func TestBrowserLogin(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	srv, s := loginServer(t, c)
	body := payloadsJSON(t, encodeOne(t, c, joinerPayload(t)))
	b := browser(t)

	resp, err := b.Get(srv.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	require.Equal(t, http.StatusUnauthorized, decodeAsUI(t, b, srv.URL, body), "no session yet")
	require.Equal(t, http.StatusUnauthorized, postForm(t, b, srv.URL+"/login", srv.URL, "wrong").StatusCode)
	require.Equal(t, http.StatusForbidden, postForm(t, b, srv.URL+"/login", "http://evil.test", testToken).StatusCode,
		"another site cannot sign the browser in")
	require.Equal(t, http.StatusUnauthorized, decodeAsUI(t, b, srv.URL, body))

	resp = postForm(t, b, srv.URL+"/login", srv.URL, testToken)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			cookie = ck
		}
	}
	require.NotNil(t, cookie)
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	require.Equal(t, http.StatusOK, decodeAsUI(t, b, srv.URL, body), "the session cookie authorises the UI")

	// The cookie alone is not enough from another origin.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/decode", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://evil.test")
	resp, err = b.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Sessions end.
	s.sessions.now = func() time.Time { return time.Now().Add(DefaultSessionTTL + time.Minute) }
	require.Equal(t, http.StatusUnauthorized, decodeAsUI(t, b, srv.URL, body), "an expired session is refused")
	s.sessions.now = time.Now
	require.Equal(t, http.StatusOK, postForm(t, b, srv.URL+"/login", srv.URL, testToken).StatusCode)
	require.Equal(t, http.StatusOK, decodeAsUI(t, b, srv.URL, body))
	require.Equal(t, http.StatusOK, postForm(t, b, srv.URL+"/logout", srv.URL, "").StatusCode)
	require.Equal(t, http.StatusUnauthorized, decodeAsUI(t, b, srv.URL, body), "signed out")
}

func TestLoginOffByDefault(t *testing.T) {
	srv := testServer(t, newCodec(t, key(t, "k1")))
	resp, err := http.Get(srv.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "without BrowserLogin /login is just another path")
}

func TestSessionTableIsBounded(t *testing.T) {
	s := newSessions(time.Hour)
	for range maxSessions + 10 {
		_, err := s.create("x")
		require.NoError(t, err)
	}
	require.Len(t, s.m, maxSessions)
}

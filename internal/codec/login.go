package codec

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The Temporal Web UI cannot send a bearer token of ours: it sends an
// Authorization header only with its own OIDC login (codec.passAccessToken),
// which the dev server's UI does not have. What a browser can send is a
// cookie, when the UI's codec settings ask it to include cross-origin
// credentials. So an operator signs in here once with the codec token, and
// the browser then carries a session cookie to /decode. The cookie is
// SameSite=Strict and HttpOnly, and /decode still accepts browser requests
// only from the UI's origin.

// SessionCookie names the browser session cookie.
const SessionCookie = "joinery_codec_session"

// DefaultSessionTTL is how long a browser session lasts.
const DefaultSessionTTL = 8 * time.Hour

// maxSessions bounds the session table, so repeated sign-ins cannot grow
// memory without limit; the oldest sessions go first.
const maxSessions = 1024

type session struct {
	caller  string
	expires time.Time
}

type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]session
	now func() time.Time
}

func newSessions(ttl time.Duration) *sessions {
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	return &sessions{ttl: ttl, m: map[string]session{}, now: time.Now}
}

func (s *sessions) create(caller string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	for len(s.m) >= maxSessions {
		oldest := ""
		for k, v := range s.m {
			if oldest == "" || v.expires.Before(s.m[oldest].expires) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	s.m[id] = session{caller: caller, expires: now.Add(s.ttl)}
	return id, nil
}

func (s *sessions) caller(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[c.Value]
	if !ok {
		return "", false
	}
	if s.now().After(v.expires) {
		delete(s.m, c.Value)
		return "", false
	}
	return v.caller, true
}

func (s *sessions) end(r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.mu.Lock()
		delete(s.m, c.Value)
		s.mu.Unlock()
	}
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Joinery codec sign-in</title></head>
<body>
<h1>Joinery codec server</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
<form method="post" action="/login">
<label>Codec token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>
<p>Then, in the Temporal Web UI ({{.UI}}), open the codec server settings, enter this server's address
and tick <em>Include cross-origin credentials</em>.</p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
</body></html>
`))

// sameOrigin reports whether a browser request comes from this server's
// own pages (the sign-in form), so another site cannot sign a browser in
// (login CSRF) or out.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		// Browsers send Origin on every cross-origin POST; its absence
		// means a same-origin form of an older browser or a non-browser.
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(origin, scheme+"://"+r.Host)
}

func (s *server) serveLogin(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	log := s.o.Logger.With("path", r.URL.Path, "remote", r.RemoteAddr)
	page := func(code int, msg string) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		_ = loginPage.Execute(w, struct{ Message, UI string }{msg, s.o.AllowedOrigin})
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/login":
		page(http.StatusOK, "")
		return
	case r.Method != http.MethodPost:
		h.Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case !sameOrigin(r):
		log.Warn("codec sign-in refused: cross-origin form", "origin", r.Header.Get("Origin"))
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	secure := r.TLS != nil
	if r.URL.Path == "/logout" {
		s.sessions.end(r)
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		page(http.StatusOK, "Signed out.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	// The token is checked by the same Authorizer as bearer requests, so
	// the two ways in can never accept different credentials.
	probe, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, "/login", nil)
	probe.Header.Set("Authorization", "Bearer "+r.PostForm.Get("token"))
	caller, err := s.o.Authorize(probe)
	if err != nil {
		log.Warn("codec sign-in refused", "reason", err.Error())
		page(http.StatusUnauthorized, "That token is not valid.")
		return
	}
	id, err := s.sessions.create("session:" + caller)
	if err != nil {
		http.Error(w, "cannot create session", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", MaxAge: int(s.sessions.ttl / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	log.Info("codec sign-in", "caller", caller)
	page(http.StatusOK, fmt.Sprintf("Signed in for %s.", s.sessions.ttl))
}

// authorize accepts a valid browser session, else the Authorizer's answer.
func (s *server) authorize(r *http.Request) (string, error) {
	if s.sessions != nil {
		if caller, ok := s.sessions.caller(r); ok {
			return caller, nil
		}
	}
	return s.o.Authorize(r)
}

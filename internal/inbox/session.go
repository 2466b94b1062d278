package inbox

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// session is one signed-in person. The store keys it by the SHA-256 of the
// cookie value, so a dump of the store's memory holds no usable cookie.
type session struct {
	user        string
	displayName string
	// csrf is the token every state-changing form of this session carries.
	csrf    string
	created time.Time
	seen    time.Time
}

// sessionStore is the server-side session table: a cookie is only a random
// name for an entry here, so logout and expiry end it for good (a copied
// cookie dies with the entry).
type sessionStore struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	max int
}

func newSessionStore(max int) *sessionStore {
	return &sessionStore{m: make(map[[32]byte]*session), max: max}
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// create starts a session and returns its ID (256 random bits).
func (st *sessionStore) create(user, displayName string, now time.Time, idle, max time.Duration) string {
	id := randomToken(32)
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= st.max {
		st.sweepLocked(now, idle, max)
	}
	if len(st.m) >= st.max {
		// Still full of live sessions: the oldest sign-in gives way, so
		// that a flood of logins cannot grow memory without bound.
		var oldest [32]byte
		var at time.Time
		for k, v := range st.m {
			if at.IsZero() || v.created.Before(at) {
				oldest, at = k, v.created
			}
		}
		delete(st.m, oldest)
	}
	st.m[sessionKey(id)] = &session{user: user, displayName: displayName, csrf: randomToken(32), created: now, seen: now}
	return id
}

// get returns the live session for id and marks it used; an idle or too old
// session is deleted and not returned.
func (st *sessionStore) get(id string, now time.Time, idle, max time.Duration) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := sessionKey(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[k]
	if !ok {
		return session{}, false
	}
	if expired(s, now, idle, max) {
		delete(st.m, k)
		return session{}, false
	}
	s.seen = now
	return *s, true
}

// delete ends the session for id (logout).
func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, sessionKey(id))
}

func (st *sessionStore) sweepLocked(now time.Time, idle, max time.Duration) {
	for k, s := range st.m {
		if expired(s, now, idle, max) {
			delete(st.m, k)
		}
	}
}

func (st *sessionStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

func expired(s *session, now time.Time, idle, max time.Duration) bool {
	return now.Sub(s.seen) >= idle || now.Sub(s.created) >= max
}

// tokensEqual compares secrets in constant time.
func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Cookie names. Over https the __Host- prefix makes the browser refuse the
// cookie unless it is Secure, host-only and Path=/, so a sibling subdomain
// cannot plant or shadow it.
func (s *Server) sessionCookieName() string {
	if s.secure {
		return "__Host-joinery_session"
	}
	return "joinery_session"
}

func (s *Server) loginCookieName() string {
	if s.secure {
		return "__Host-joinery_login"
	}
	return "joinery_login"
}

func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode}
}

// currentSession returns the request's live session, if any.
func (s *Server) currentSession(r *http.Request) (session, string, bool) {
	c, err := r.Cookie(s.sessionCookieName())
	if err != nil {
		return session{}, "", false
	}
	sess, ok := s.sessions.get(c.Value, s.now(), s.cfg.SessionIdle, s.cfg.SessionMax)
	return sess, c.Value, ok
}

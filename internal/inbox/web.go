package inbox

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
)

// webHandler is a page handler that runs with a live session.
type webHandler func(w http.ResponseWriter, r *http.Request, sess session, sid string)

// web requires a live session. A state-changing request must also come from
// the inbox's own origin and carry the session's CSRF token; the
// SameSite=Strict cookie already keeps cross-site posts sessionless, and
// the two checks hold where a browser does not honour it.
func (s *Server) web(h webHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, sid, ok := s.currentSession(r)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if !ok {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h(w, r, sess, sid)
			return
		}
		if !s.sameOrigin(r) {
			// "want" helps the operator whose JOINERY_INBOX_URL does not
			// match the address people actually use.
			s.security("refused a cross-origin post", "path", r.URL.Path, "origin", r.Header.Get("Origin"),
				"referer", r.Header.Get("Referer"), "want", s.origin, "ip", clientIP(r))
			s.message(w, http.StatusForbidden, nil, "Refused", "This request did not come from the inbox's own pages.", "")
			return
		}
		if !ok {
			s.message(w, http.StatusUnauthorized, nil, "Signed out", "Your session has ended. Sign in again.", "")
			return
		}
		if err := r.ParseForm(); err != nil {
			s.message(w, http.StatusBadRequest, &sess, "Bad request", "The form could not be read.", "")
			return
		}
		if !tokensEqual(r.PostForm.Get("csrf"), sess.csrf) {
			s.security("refused a post without the session's CSRF token", "user", sess.user, "path", r.URL.Path, "ip", clientIP(r))
			s.message(w, http.StatusForbidden, &sess, "Refused", "The form's security token is missing or wrong. Reload the page and try again.", "")
			return
		}
		h(w, r, sess, sid)
	}
}

// localPath keeps a post-login redirect on this site: a path, not a URL,
// and not a protocol-relative "//host".
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

type loginData struct{ Token, Next, Username string }

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.currentSession(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.showLogin(w, http.StatusOK, "", localPath(r.URL.Query().Get("next")), "")
}

// showLogin renders the form with a fresh pre-session CSRF token, set as a
// cookie too (double submit): a cross-site page can make a browser post the
// form but cannot read or set the cookie to match, so it cannot sign a
// victim in to the attacker's account (login CSRF).
func (s *Server) showLogin(w http.ResponseWriter, code int, flash, next, username string) {
	tok := randomToken(32)
	http.SetCookie(w, s.cookie(s.loginCookieName(), tok, 900))
	s.render(w, code, "login", pageData{Title: "Sign in", Flash: flash, Data: loginData{Token: tok, Next: next, Username: username}})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if !s.sameOrigin(r) {
		s.security("refused a cross-origin sign-in", "origin", r.Header.Get("Origin"), "want", s.origin, "ip", ip)
		s.message(w, http.StatusForbidden, nil, "Refused", "This request did not come from the inbox's own pages.", "")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.message(w, http.StatusBadRequest, nil, "Bad request", "The form could not be read.", "")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	c, err := r.Cookie(s.loginCookieName())
	if err != nil || !tokensEqual(r.PostForm.Get("csrf"), c.Value) {
		s.security("refused a sign-in without its form token", "ip", ip)
		s.showLogin(w, http.StatusForbidden, "The sign-in form expired. Please try again.", next, "")
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	id, code, msg := s.authenticate(r, username, r.PostForm.Get("password"))
	if code != 0 {
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", msg)
			s.showLogin(w, code, "Too many failed sign-ins. Try again in "+msg+" seconds.", next, username)
			return
		}
		s.showLogin(w, code, msg, next, username)
		return
	}
	// A fresh session ID at every sign-in: a session ID planted before
	// sign-in (fixation) never becomes a signed-in one.
	if old, err := r.Cookie(s.sessionCookieName()); err == nil {
		s.sessions.delete(old.Value)
	}
	sid := s.sessions.create(id.Username, id.DisplayName, s.now(), s.cfg.SessionIdle, s.cfg.SessionMax)
	http.SetCookie(w, s.cookie(s.sessionCookieName(), sid, 0))
	http.SetCookie(w, s.cookie(s.loginCookieName(), "", -1))
	s.log.Info("signed in", "user", id.Username, "ip", ip)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// authenticate runs one throttled sign-in. It returns the identity, or an
// HTTP status with a message (for 429 the message is the Retry-After
// seconds). The web form and the API share it, so one guessing budget
// covers both.
func (s *Server) authenticate(r *http.Request, username, password string) (directory.Identity, int, string) {
	now := s.now()
	ip := clientIP(r)
	userKey, ipKey := "user:"+strings.ToLower(username), "ip:"+ip
	for _, k := range []string{userKey, ipKey} {
		if ok, wait := s.throttle.allow(k, now); !ok {
			s.security("sign-in throttled", "key", k, "ip", ip)
			secs := int(wait.Round(time.Second) / time.Second)
			if secs < 1 {
				secs = 1
			}
			return directory.Identity{}, http.StatusTooManyRequests, strconv.Itoa(secs)
		}
	}
	if username == "" || password == "" {
		// Never asked of the directory (an empty password would be an
		// anonymous bind); still counts, so blank posts cannot probe.
		s.throttle.fail(userKey, now)
		s.throttle.fail(ipKey, now)
		return directory.Identity{}, http.StatusUnauthorized, "Invalid username or password."
	}
	id, err := s.auth.Authenticate(r.Context(), username, password)
	if errors.Is(err, directory.ErrInvalidCredentials) {
		s.throttle.fail(userKey, now)
		s.throttle.fail(ipKey, now)
		s.security("sign-in failed", "user", username, "ip", ip)
		return directory.Identity{}, http.StatusUnauthorized, "Invalid username or password."
	}
	if err != nil {
		// Not the person's fault: not counted, and not called a wrong password.
		s.log.Error("sign-in: directory unavailable", "err", err)
		return directory.Identity{}, http.StatusServiceUnavailable, "The directory is not answering. Try again in a minute."
	}
	s.throttle.reset(userKey)
	return id, 0, ""
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess session, sid string) {
	s.sessions.delete(sid)
	http.SetCookie(w, s.cookie(s.sessionCookieName(), "", -1))
	s.log.Info("signed out", "user", sess.user)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) page(sess session, title string, data any) pageData {
	return pageData{Title: title, User: sess.user, DisplayName: sess.displayName, CSRF: sess.csrf, Data: data}
}

// waitingRow is one line of "Waiting for me".
type waitingRow struct {
	joiner
	May string
}

func (s *Server) waitingPage(w http.ResponseWriter, r *http.Request, sess session, _ string) {
	js, err := s.waitingFor(r.Context(), sess.user)
	if err != nil {
		s.log.Error("waiting list", "err", err)
		s.message(w, http.StatusServiceUnavailable, &sess, "Unavailable", "Temporal is not answering; try again.", "")
		return
	}
	rows := make([]waitingRow, 0, len(js))
	for _, j := range js {
		may := "approve or reject"
		if rightsOf(j, sess.user).Extend {
			may = "extend access"
		}
		rows = append(rows, waitingRow{j, may})
	}
	s.render(w, http.StatusOK, "waiting", s.page(sess, "Waiting for me", rows))
}

type joinerPageData struct {
	Joiner joiner
	Rights rights
}

func (s *Server) joinerPage(w http.ResponseWriter, r *http.Request, sess session, _ string) {
	id := r.PathValue("id")
	j, err := s.load(r.Context(), id)
	if errors.Is(err, errNotFound) {
		s.notFound(w, sess)
		return
	}
	if err != nil {
		s.log.Error("joiner page", "workflow", id, "err", err)
		s.message(w, http.StatusServiceUnavailable, &sess, "Unavailable", "The joiner's status is not available; try again.", "")
		return
	}
	rr := rightsOf(j, sess.user)
	if !rr.Related {
		s.security("refused a joiner page to someone without a part in it", "user", sess.user, "workflow", id)
		s.notFound(w, sess)
		return
	}
	s.render(w, http.StatusOK, "joiner", s.page(sess, id, joinerPageData{Joiner: j, Rights: rr}))
}

// notFound is the one answer for "does not exist" and "not yours".
func (s *Server) notFound(w http.ResponseWriter, sess session) {
	s.message(w, http.StatusNotFound, &sess, "Not found", "There is no such joiner waiting for you.", "")
}

func (s *Server) decisionPost(w http.ResponseWriter, r *http.Request, sess session, _ string) {
	id := r.PathValue("id")
	res := s.decide(r.Context(), sess.user, decideRequest{
		WorkflowID: id, Action: decision.Action(r.PostForm.Get("action")), Comment: r.PostForm.Get("comment"),
		EndDate: r.PostForm.Get("endDate"), PlanHash: r.PostForm.Get("planHash"), Wait: true, Via: ViaWeb,
	})
	switch {
	case res.Code == http.StatusNotFound:
		s.notFound(w, sess)
	case res.Code < 300:
		s.message(w, res.Code, &sess, "Decision recorded", res.Message, id)
	default:
		s.message(w, res.Code, &sess, "Decision refused", res.Message, id)
	}
}

func (s *Server) decisionsPage(w http.ResponseWriter, r *http.Request, sess session, _ string) {
	ps, err := s.decidedBy(r.Context(), sess.user)
	if err != nil {
		s.log.Error("decisions list", "err", err)
		s.message(w, http.StatusServiceUnavailable, &sess, "Unavailable", "Temporal is not answering; try again.", "")
		return
	}
	s.render(w, http.StatusOK, "decisions", s.page(sess, "My decisions", ps))
}

// Package inbox is the approval inbox: the web pages and JSON API where a
// person signs in with their directory account, sees the joiners waiting for
// their decision, and decides.
//
// An approval used to be a name typed into a Temporal signal, which anyone
// with Temporal access could forge. Here the inbox is the only holder of the
// Ed25519 decision key: it signs a decision only for the person who proved
// their password to the directory, only when the joiner's own status says
// that person may decide now, and only for the plan the joiner will carry
// out (decision.PlanHash of the plan, checked against the hash the workflow
// recorded). The workflow verifies the signature itself, so the inbox being
// bypassed gains an attacker nothing.
//
// The adversaries the design keeps out, each named in the tests:
//   - a signed-in person deciding someone else's joiner (404, nothing signed);
//   - a cross-site form post (SameSite=Strict cookie, per-session CSRF token,
//     Origin check);
//   - a stolen cookie after logout or expiry (server-side sessions, idle and
//     absolute limits);
//   - a password-guessing loop (throttled per username and per client IP);
//   - framing and caching of decision pages (CSP, X-Frame-Options, no-store).
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/pseudonym"
)

// Via values recorded in signed decisions: which inbox path a person used.
const (
	ViaWeb = "inbox-web"
	ViaAPI = "inbox-api"
)

// Authenticator proves a person's directory password. directory.Client
// implements it; its errors wrap directory.ErrInvalidCredentials for every
// refused sign-in and are otherwise directory faults.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (directory.Identity, error)
}

// Temporal is the part of client.Client the inbox uses, so that unit tests
// can fake it. A client.Client satisfies it.
type Temporal interface {
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	QueryWorkflow(ctx context.Context, workflowID string, runID string, queryType string, args ...interface{}) (converter.EncodedValue, error)
	UpdateWorkflow(ctx context.Context, options client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
	SignalWorkflow(ctx context.Context, workflowID string, runID string, signalName string, arg interface{}) error
	// GetWorkflow reads a closed joiner's result from its history, which
	// needs no worker (a query on a closed workflow does).
	GetWorkflow(ctx context.Context, workflowID string, runID string) client.WorkflowRun
}

var _ Temporal = client.Client(nil)

// Config is how the inbox presents itself and how long sessions last.
type Config struct {
	// BaseURL is the inbox as people reach it (JOINERY_INBOX_URL). Its
	// origin is the only one state-changing requests may come from, and an
	// https base URL makes the session cookie Secure.
	BaseURL string
	// SessionIdle ends a session after this long without a request;
	// SessionMax ends it this long after sign-in, however active.
	SessionIdle, SessionMax time.Duration
	// HandoverDir is JOINERY_INBOX_DIR: wrapped tokens wait in
	// <HandoverDir>/handover/<username>/<joiner>.token. Empty turns the
	// handover page off.
	HandoverDir string
	// LoginLimit failed sign-ins per username, and per client IP, within
	// LoginWindow get 429 until the window passes. Defaults 5 and 15m.
	LoginLimit  int
	LoginWindow time.Duration
	// MaxSessions bounds the session store (default 10000).
	MaxSessions int
}

// Server is the inbox. Build it with New.
type Server struct {
	auth     Authenticator
	signer   decision.Signer
	temporal Temporal
	wrapping Wrapping
	log      *slog.Logger
	now      func() time.Time
	cfg      Config
	origin   string
	secure   bool

	sessions *sessionStore
	throttle *throttle
	seen     *wrapSeen
	pages    *pageTemplates
	// pseudonyms finds people in the search attributes, which hold keyed
	// pseudonyms, not usernames (internal/pseudonym).
	pseudonyms *pseudonym.Keyer
}

// Deps are the Server's collaborators. Wrapping may be nil (no handover
// page); Now defaults to time.Now, Logger to slog.Default.
type Deps struct {
	Auth     Authenticator
	Signer   decision.Signer
	Temporal Temporal
	Wrapping Wrapping
	Logger   *slog.Logger
	Now      func() time.Time
	// Pseudonyms computes the search-attribute key of the person signed in
	// (JOINERY_PSEUDONYM_KEY, the worker's key); required.
	Pseudonyms *pseudonym.Keyer
}

// New checks the configuration and returns the inbox.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Auth == nil || d.Signer == nil || d.Temporal == nil {
		return nil, errors.New("inbox: an authenticator, a signer and a Temporal client are required")
	}
	if d.Pseudonyms == nil {
		// Without it "waiting for me" would silently find nothing.
		return nil, errors.New("inbox: a pseudonym key is required to find people's joiners (JOINERY_PSEUDONYM_KEY)")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("inbox: base URL %q: want http(s)://host[:port]", cfg.BaseURL)
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = 8 * time.Hour
	}
	if cfg.LoginLimit <= 0 {
		cfg.LoginLimit = 5
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := &Server{
		auth: d.Auth, signer: d.Signer, temporal: d.Temporal, wrapping: d.Wrapping,
		log: d.Logger.With("component", "inbox"), now: d.Now, cfg: cfg,
		origin:   u.Scheme + "://" + u.Host,
		secure:   u.Scheme == "https",
		sessions: newSessionStore(cfg.MaxSessions),
		throttle: newThrottle(cfg.LoginLimit, cfg.LoginWindow, 20000),
		seen:     newWrapSeen(10000),
		pages:    parsePages(),

		pseudonyms: d.Pseudonyms,
	}
	return s, nil
}

// maxBody bounds every request body: the largest legitimate one is a
// decision with a 1000-byte comment.
const maxBody = 64 << 10

// Handler returns the inbox's routes behind the security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = w.Write([]byte(styleCSS))
	})
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.web(s.logout))
	mux.HandleFunc("GET /{$}", s.web(s.waitingPage))
	mux.HandleFunc("GET /joiners/{id}", s.web(s.joinerPage))
	mux.HandleFunc("POST /joiners/{id}/decision", s.web(s.decisionPost))
	mux.HandleFunc("GET /decisions", s.web(s.decisionsPage))
	mux.HandleFunc("GET /handover", s.web(s.handoverPage))
	mux.HandleFunc("POST /handover/{joiner}/unwrap", s.web(s.unwrapPost))

	mux.HandleFunc("GET /api/v1/waiting", s.api(s.apiWaiting))
	mux.HandleFunc("POST /api/v1/joiners/{id}/decision", s.api(s.apiDecision))
	return s.secured(mux)
}

// secured sets the headers every answer carries and bounds the body.
func (s *Server) secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// No script, no style or frame from elsewhere, forms post only here:
		// an injected tag can neither run nor exfiltrate a token.
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		// Every page holds a CSRF token, a decision or a credential: none
		// of it belongs in a shared or back-button cache.
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin says whether a state-changing browser request comes from the
// inbox's own pages. Browsers send Origin on every cross-origin POST and on
// same-origin ones too; Referer (same-origin policy keeps it) is the fallback
// for older ones. A request with neither is refused: a browser always sends
// one of them, and the API (which has no cookies) does not come here.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == s.origin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == s.origin
	}
	return false
}

// clientIP is the peer address. Forwarded headers are not trusted: behind a
// proxy every client shares the proxy's budget, which errs on the safe side.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ListenAndServe serves the inbox on addr until ctx ends, then shuts down
// gracefully (requests in flight get up to 10 seconds).
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("inbox: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the inbox on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Deciding waits for the workflow's answer; a minute is plenty.
		WriteTimeout:   90 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("approval inbox listening", "addr", ln.Addr().String(), "url", s.cfg.BaseURL, "key", s.signer.KeyID())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("inbox: %w", err)
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("inbox: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("inbox: %w", err)
	}
	return nil
}

// limitText trims a comment and says whether it fits a decision.
func limitText(s string) (string, bool) {
	s = strings.TrimSpace(s)
	return s, len(s) <= decision.MaxCommentLen
}

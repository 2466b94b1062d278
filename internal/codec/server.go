package codec

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// DefaultMaxBodyBytes bounds a codec request. Temporal refuses payloads over
// 2 MB, and the Web UI sends one event's payloads per request; the margin
// covers JSON and base64 overhead without letting a caller exhaust memory.
const DefaultMaxBodyBytes = 8 << 20

// Authorizer decides whether a request may use the codec. It returns the
// caller's identity (for the log: who decoded what, and when) or an error
// that is logged, never shown to the caller.
type Authorizer func(r *http.Request) (caller string, err error)

// ErrUnauthenticated is what an Authorizer returns for a request without
// valid credentials.
var ErrUnauthenticated = errors.New("codec: no valid credentials")

// BearerTokens accepts "Authorization: Bearer T" for any of tokens (more than
// one while rotating the token). An empty list refuses every request. The
// caller is identified by a short hash of its token, never the token itself.
func BearerTokens(tokens ...string) Authorizer {
	var sums [][32]byte
	for _, t := range tokens {
		if t != "" {
			sums = append(sums, sha256.Sum256([]byte(t)))
		}
	}
	return func(r *http.Request) (string, error) {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", ErrUnauthenticated
		}
		// Compare hashes in constant time, so neither the token's bytes nor
		// its length leak through timing.
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		for _, want := range sums {
			if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
				return fmt.Sprintf("bearer:%x", want[:4]), nil
			}
		}
		return "", ErrUnauthenticated
	}
}

// ServerOptions configure the codec endpoint.
type ServerOptions struct {
	// Codec does the work; required.
	Codec *Codec
	// Authorize is required: the endpoint turns ciphertext into people's
	// personal data, so it never runs open.
	Authorize Authorizer
	// AllowedOrigin is the one browser origin (the Temporal Web UI, e.g.
	// http://127.0.0.1:8233) whose pages may call the endpoint. Requests
	// from any other origin are refused; requests without an Origin header
	// (the temporal CLI, scripts) are not browser requests and only need
	// credentials.
	AllowedOrigin string
	// Namespace, when set, refuses requests naming another namespace in
	// X-Namespace (the header the Web UI sends).
	Namespace string
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger records every use and refusal; nil discards.
	Logger *slog.Logger
	// BrowserLogin serves GET/POST /login and POST /logout: an operator signs
	// in once with a token the Authorizer accepts and the browser carries a
	// session cookie (see login.go); SessionTTL bounds it (0: 8h).
	BrowserLogin bool
	SessionTTL   time.Duration
}

// Origin returns the origin (scheme://host[:port]) of a URL such as
// JOINERY_TEMPORAL_UI_URL, the form browsers send in the Origin header.
func Origin(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("codec: %q is not an absolute URL", rawURL)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

// NewServer returns the codec endpoint: POST /encode and POST /decode with a
// JSON body of Temporal Payloads (the protocol of the Web UI's and the
// temporal CLI's --codec-endpoint), behind authentication and CORS.
func NewServer(o ServerOptions) (http.Handler, error) {
	if o.Codec == nil {
		return nil, errors.New("codec server: no codec")
	}
	if o.Authorize == nil {
		return nil, errors.New("codec server: no authorizer")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.AllowedOrigin != "" {
		origin, err := Origin(o.AllowedOrigin)
		if err != nil {
			return nil, err
		}
		o.AllowedOrigin = origin
	}
	s := &server{o: o, inner: converter.NewPayloadCodecHTTPHandler(o.Codec)}
	if o.BrowserLogin {
		s.sessions = newSessions(o.SessionTTL)
	}
	return s, nil
}

type server struct {
	o        ServerOptions
	inner    http.Handler
	sessions *sessions
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Decoded payloads are personal data: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	log := s.o.Logger.With("method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	if s.sessions != nil && (r.URL.Path == "/login" || r.URL.Path == "/logout") {
		s.serveLogin(w, r)
		return
	}

	if origin := r.Header.Get("Origin"); origin != "" {
		h.Add("Vary", "Origin")
		if s.o.AllowedOrigin == "" || !strings.EqualFold(origin, s.o.AllowedOrigin) {
			log.Warn("codec request refused: origin not allowed", "origin", origin)
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Origin", s.o.AllowedOrigin)
		// The UI's "include cross-origin credentials" setting needs this;
		// it is safe because exactly one origin is allowed.
		h.Set("Access-Control-Allow-Credentials", "true")
		if r.Method == http.MethodOptions {
			// A preflight never carries credentials, so it is answered
			// before authentication; it grants nothing by itself.
			h.Set("Access-Control-Allow-Methods", http.MethodPost)
			h.Set("Access-Control-Allow-Headers", "Authorization, Authorization-Extras, Content-Type, X-Namespace")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	op := strings.TrimPrefix(r.URL.Path, "/")
	if op != "encode" && op != "decode" {
		http.NotFound(w, r)
		return
	}
	caller, err := s.authorize(r)
	if err != nil {
		log.Warn("codec request refused: not authenticated", "reason", err.Error())
		h.Set("WWW-Authenticate", `Bearer realm="joinery-codec"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	log = log.With("caller", caller, "op", op)
	// Requiring JSON also means a plain HTML form on another site cannot
	// post here without a CORS preflight, which the origin check refuses.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "want Content-Type: application/json", http.StatusUnsupportedMediaType)
		return
	}
	ns := r.Header.Get("X-Namespace")
	if ns != "" && s.o.Namespace != "" && ns != s.o.Namespace {
		log.Warn("codec request refused: other namespace", "namespace", ns)
		http.Error(w, "namespace not served here", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body over %d bytes", s.o.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.inner.ServeHTTP(rec, r)
	log.Info("codec request", "namespace", ns, "bytes", len(body), "status", rec.status)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

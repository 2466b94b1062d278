// Package intake is Joinery's HR intake: the HTTP server behind
// `starter serve` and the row engine behind `starter import`.
//
// Every path that can start a joiner — signed HRIS webhooks, the JSON API,
// CSV and NDJSON bulk uploads, SCIM 2.0 bulk requests in the shape of
// Microsoft Entra's API-driven inbound provisioning, and the import command —
// goes through one function, Normalize, and one Starter. Bad input gets a 4xx
// naming the field and starts nothing; repeated or concurrent deliveries of
// one hire collapse onto one workflow (its ID derives from the HR record ID)
// and the answer says so ("already running", "already done").
package intake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/metrics"
)

// Defaults for the zero values of Server's limits.
const (
	DefaultMaxBody         = 1 << 20  // webhook, /joiners, SCIM bulk
	DefaultMaxBulkBody     = 64 << 20 // /joiners:bulk (streamed, never held in memory)
	DefaultMaxBulkRows     = 100_000
	DefaultBulkConcurrency = 4
	DefaultStartTimeout    = 15 * time.Second
	DefaultRequestTimeout  = time.Minute
	DefaultBulkTimeout     = 30 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultMaxWebhookEvents bounds one webhook delivery: BambooHR batches
	// changes, but a delivery of thousands of events is an import, and
	// belongs in /joiners:bulk.
	DefaultMaxWebhookEvents = 500
)

// Server is the intake HTTP server. Set its fields, then use Handler or
// ListenAndServe. The zero limits mean the Default* constants.
type Server struct {
	// Starter starts and signals joiners.
	Starter
	// Verifier authenticates HRIS webhooks; nil refuses every webhook.
	Verifier *hris.Verifier
	// Token is the bearer token of the API, bulk and SCIM endpoints; empty
	// refuses every request to them rather than accept anyone.
	Token string
	// Logger receives JSON access logs and per-joiner outcomes. They carry
	// HR IDs but never bodies, tokens, names or e-mail addresses.
	Logger *slog.Logger
	// MaxBody bounds the webhook, /joiners and SCIM bodies (bytes).
	MaxBody int64
	// MaxBulkBody bounds a /joiners:bulk upload (bytes).
	MaxBulkBody int64
	// MaxBulkRows bounds the rows of one bulk upload.
	MaxBulkRows int
	// BulkConcurrency is how many starts of one bulk upload run at once.
	BulkConcurrency int
	// StartTimeout bounds one start or signal call to Temporal.
	StartTimeout time.Duration
	// RequestTimeout bounds reading and answering a non-bulk request.
	RequestTimeout time.Duration
	// BulkTimeout bounds one bulk upload, end to end.
	BulkTimeout time.Duration
	// ShutdownTimeout is how long ListenAndServe lets requests in flight
	// finish once its context ends.
	ShutdownTimeout time.Duration
	// Ready is the readiness check behind /readyz (Temporal reachable);
	// nil means always ready.
	Ready func(ctx context.Context) error
	// Now is the clock (default time.Now); webhook rules compare dates to today.
	Now func() time.Time
	// Rates overrides DefaultRates per source (SourceWebhook, SourceAPI,
	// SourceBulk, SourceSCIM); a zero Rate turns that source's limit off.
	Rates map[string]Rate
	// MaxBulkInFlight bounds concurrent bulk uploads (default
	// DefaultMaxBulkInFlight); more are answered 429.
	MaxBulkInFlight int
	// MaxWebhookEvents bounds the events of one webhook delivery (default
	// DefaultMaxWebhookEvents).
	MaxWebhookEvents int
	// HoldFullRetryAfter is the Retry-After of an answer refused because
	// the blast-radius hold is full (default DefaultHoldFullRetryAfter).
	HoldFullRetryAfter time.Duration

	limits       limiter
	bulkInFlight atomic.Int32
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func orInt64(v, d int64) int64 {
	if v <= 0 {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func orDur(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

// Handler returns the intake's routes wrapped in panic recovery, deadlines
// and access logging:
//
//	POST /hris/webhook   signed HRIS webhook (Verifier)
//	POST /joiners        start one joiner (bearer Token)
//	POST /joiners:bulk   CSV or NDJSON upload, answered as NDJSON (bearer)
//	POST /scim/v2/Bulk   SCIM bulk request, Entra inbound provisioning shape (bearer)
//	GET  /healthz        the process is alive
//	GET  /readyz         Ready (Temporal reachable)
func (s *Server) Handler() http.Handler {
	routes := map[string]struct {
		methods []string
		h       http.HandlerFunc
	}{
		"/hris/webhook": {[]string{http.MethodPost}, s.handleWebhook},
		"/joiners":      {[]string{http.MethodPost}, s.bearer(s.handleJoiner)},
		"/joiners:bulk": {[]string{http.MethodPost}, s.bearer(s.handleBulk)},
		"/scim/v2/Bulk": {[]string{http.MethodPost}, s.handleSCIM},
		"/healthz":      {[]string{http.MethodGet, http.MethodHead}, s.handleHealth},
		"/readyz":       {[]string{http.MethodGet, http.MethodHead}, s.handleReady},
	}
	// A map on exact paths rather than http.ServeMux: every answer,
	// including 404 and 405, must be the JSON error shape, and ServeMux
	// writes plain-text ones.
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := routes[r.URL.Path]
		if !ok {
			writeError(w, http.StatusNotFound, &FieldError{Field: "path", Reason: "no such endpoint"})
			return
		}
		for _, m := range rt.methods {
			if r.Method == m {
				rt.h(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		writeError(w, http.StatusMethodNotAllowed, &FieldError{Field: "method", Reason: r.Method + " is not allowed here"})
	})
	return s.accessLog(s.recoverPanics(mux))
}

// ListenAndServe serves Handler on addr until ctx ends, then shuts down
// gracefully: it stops accepting, lets requests in flight finish for up to
// ShutdownTimeout, and returns nil after a clean shutdown.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("intake: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on an existing listener (tests pick a free port).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.Handler(),
		// Per-request read and write deadlines are set by the handlers
		// (bulk uploads need far longer than a webhook); these bound the
		// parts that come before a handler runs.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger().Info("intake listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("intake: %w", err)
	case <-ctx.Done():
	}
	s.logger().Info("intake shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), orDur(s.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("intake: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("intake: %w", err)
	}
	return nil
}

// setHoldFullRetryAfter sets the Retry-After of a hold-full answer.
func (s *Server) setHoldFullRetryAfter(w http.ResponseWriter) {
	secs := int(orDur(s.HoldFullRetryAfter, DefaultHoldFullRetryAfter).Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}

// writeJSON writes v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the JSON error answer {"error": ..., "field": ...}.
func writeError(w http.ResponseWriter, status int, fe *FieldError) {
	writeJSON(w, status, fe)
}

// bodyError turns a failure to read a request body into its answer: 413
// when the limit was hit, 400 otherwise.
func bodyError(err error) (int, *FieldError) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, fieldErr("body", "request body exceeds %d bytes", mbe.Limit)
	}
	return http.StatusBadRequest, fieldErr("body", "could not read the request body")
}

// checkLength refuses a declared Content-Length over max before reading.
func checkLength(r *http.Request, max int64) (int, *FieldError) {
	if r.ContentLength > max {
		return http.StatusRequestEntityTooLarge, fieldErr("body", "request body exceeds %d bytes", max)
	}
	return 0, nil
}

// authorized compares the bearer token in constant time. Hashing both sides
// first keeps the comparison's duration independent of the token's length too.
func (s *Server) authorized(r *http.Request) bool {
	if s.Token == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	want := sha256.Sum256([]byte(s.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// errUnauthorized is the answer to a request without the right bearer token.
func errUnauthorized() *FieldError {
	return &FieldError{Field: "Authorization", Reason: "missing or invalid bearer token"}
}

func (s *Server) bearer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="joinery-intake"`)
			writeError(w, http.StatusUnauthorized, errUnauthorized())
			return
		}
		h(w, r)
	}
}

// contentType returns the request's media type, lower-cased, without parameters.
func contentType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			s.logger().Warn("not ready", "err", err.Error())
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// statusWriter records the status and size of an answer for the access log.
// Unwrap lets http.ResponseController reach the connection (Flush,
// deadlines, full duplex) through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

type ctxKey struct{}

// reqNoteKey carries the request's *reqNote from accessLog to the handler.
type reqNoteKey struct{}

// reqNote is what a handler tells the access log beyond the status code.
type reqNote struct {
	// outcome overrides the outcome the status implies (metrics
	// IntakeOutcome): a hold-full answer is 429 or 503 by what its sender
	// retries on, but it is neither a flood nor Temporal being down, and
	// the alerts must tell them apart.
	outcome string
}

// noteOutcome records the request's outcome for its access-log record.
func noteOutcome(ctx context.Context, outcome string) {
	if n, ok := ctx.Value(reqNoteKey{}).(*reqNote); ok {
		n.outcome = outcome
	}
}

// RowRecord is the message of the one log record the intake writes per row
// it judges — an API request, a webhook event, a bulk row, a SCIM
// operation — with its source, outcome (the row's own: started, already
// running, refused, held, hold-full, invalid, error, ...) and the refusal's
// reason code. joinery_intake_rows_total counts these records (metrics
// IntakeTap); a request refused as a whole (unauthenticated, malformed,
// too large, throttled) has no row records, only its access-log record.
const RowRecord = metrics.IntakeRowRecord

// logRow writes a row's record. Failures are errors, held and hold-full
// rows warnings, everything else information.
func (s *Server) logRow(ctx context.Context, source, outcome, reason string, attrs ...slog.Attr) {
	level := slog.LevelInfo
	switch outcome {
	case OutcomeError:
		level = slog.LevelError
	case OutcomeHeld, OutcomeHoldFull:
		level = slog.LevelWarn
	}
	base := []slog.Attr{slog.String("request_id", requestID(ctx)), slog.String("source", source), slog.String("outcome", outcome)}
	if reason != "" {
		base = append(base, slog.String("reason", reason))
	}
	s.logger().LogAttrs(ctx, level, RowRecord, append(base, attrs...)...)
}

// requestID returns the ID accessLog assigned to the request.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// accessLog logs one JSON line per request: method, path (never the query),
// status, size, duration and request ID. It also sets the default deadlines
// (bulk uploads extend theirs).
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !requestIDRE.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		sw := &statusWriter{ResponseWriter: w}
		rc := http.NewResponseController(sw)
		deadline := start.Add(orDur(s.RequestTimeout, DefaultRequestTimeout))
		_ = rc.SetReadDeadline(deadline)
		_ = rc.SetWriteDeadline(deadline)
		note := &reqNote{}
		ctx := context.WithValue(context.WithValue(r.Context(), ctxKey{}, id), reqNoteKey{}, note)
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		attrs := []slog.Attr{
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Int64("duration_ms", time.Since(start).Milliseconds()),
			slog.String("remote", r.RemoteAddr),
		}
		if note.outcome != "" {
			attrs = append(attrs, slog.String("outcome", note.outcome))
		}
		s.logger().LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger().Error("handler panic", "request_id", requestID(r.Context()), "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, &FieldError{Reason: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// startCtx bounds one call to the Starter.
func (s *Server) startCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, orDur(s.StartTimeout, DefaultStartTimeout))
}

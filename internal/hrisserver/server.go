// Package hrisserver is Joinery's reference HRIS: a small HTTP service that
// implements the subset of the BambooHR REST API Joinery uses, backed by
// SQLite, so that the dev stack and the integration tests exercise the HRIS
// connector against a real server instead of a mock.
//
// API (HTTP Basic, API key as user, any password; all answers JSON):
//
//	GET  /api/gateway.php/{company}/v1/employees/{id}?fields=a,b  → 200 {"id":"..","a":..}
//	POST /api/gateway.php/{company}/v1/employees/{id}             → 200 (body: {"field":"value"})
//	POST /api/gateway.php/{company}/v1/employees/                 → 201 + Location (firstName, lastName required)
//
// Values are rendered as JSON strings; an empty value is rendered as null, as
// BambooHR does. displayName is computed (preferredName or firstName, then
// lastName); id, displayName and lastChanged are read-only. lastChanged moves
// on every update that changes a value. Errors are 4xx/5xx with an
// X-BambooHR-Error-Message header and a {"error": "..."} body.
//
// Webhooks: adding an employee, and an update that changes hireDate,
// terminationDate or status, posts a BambooHR field-based payload signed with
// the webhook secret (X-BambooHR-Signature, X-BambooHR-Timestamp; see
// hris.Sign) to the configured URL and to every subscriber, asynchronously,
// with retries.
//
// Admin API for tests and the demo (Authorization: Bearer <AdminToken>):
//
//	PUT    /_admin/webhook      {"url": "..."}   set (or, with "", clear) the primary webhook URL
//	GET    /_admin/webhook                       show the primary URL and subscribers
//	POST   /_admin/webhooks     {"url": "..."}   add a subscriber → 201 {"id": "s1"}
//	DELETE /_admin/webhooks/{id}                 remove a subscriber (204, also when absent)
//	POST   /_admin/faults       {"employeeId": "123", "status": 429, "retryAfterSeconds": 1, "count": 2, "message": "..."}
//	DELETE /_admin/faults/{employeeId}           clear that employee's fault
//	GET    /_admin/healthz
//
// Subscribers exist so that parallel tests can each receive every event
// without taking the primary URL from one another; faults are scoped to one
// employee for the same reason. GET /healthz is unauthenticated.
//
// Seed: SeedFile (testdata/hris/seed.json) is JSON {"employees": [{"id": "1",
// "firstName": "Grace", ...}]} with BambooHR field names and string values.
// It is loaded only into an empty database, so restarts keep API changes. A
// date may be written "@today+14d" (or "@today", "@today-3d") and is resolved
// when the seed loads, so that a pending hire stays in the future. Employees
// added through the API get ids from 1000 upwards, skipping seeded ids.
package hrisserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address of ListenAndServe, e.g. 127.0.0.1:8090.
	Addr string
	// DBPath is the SQLite database file (created if missing).
	DBPath string
	// Company is the company domain segment of API paths.
	Company string
	// APIKey is the only accepted Basic-auth user. Secret.
	APIKey string
	// WebhookURL is the primary webhook target; empty means none (it can be
	// set later through the admin API).
	WebhookURL string
	// WebhookSecret signs webhook deliveries. Secret.
	WebhookSecret string
	// AdminToken authorises the admin API; empty disables it. Secret.
	AdminToken string
	// SeedFile is loaded into an empty database on open; empty means none.
	SeedFile string
	// Logger receives request and delivery logs (default: discard).
	Logger *slog.Logger

	// WebhookAttempts is how often one delivery is tried (default 4).
	WebhookAttempts int
	// WebhookBackoff is the pause before the first retry, doubled after
	// each further attempt (default and minimum 1s: every attempt must carry
	// a new whole-second X-BambooHR-Timestamp, or the receiver's replay check
	// would rightly refuse the retry as a copy of the first attempt).
	WebhookBackoff time.Duration
}

// Server is the reference HRIS. Create it with New, serve Handler (or call
// ListenAndServe), and Close it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store
	hooks   *deliverer
	faults  *faults
	handler http.Handler
	now     func() time.Time

	closeOnce sync.Once
	closeErr  error
}

// New opens (and on first use seeds) the database and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.DBPath == "":
		return nil, errors.New("hrisserver: DBPath is required")
	case cfg.Company == "":
		return nil, errors.New("hrisserver: Company is required")
	case cfg.APIKey == "":
		return nil, errors.New("hrisserver: APIKey is required")
	case cfg.WebhookSecret == "":
		return nil, errors.New("hrisserver: WebhookSecret is required")
	}
	if err := checkTargetURL(cfg.WebhookURL); err != nil {
		return nil, fmt.Errorf("hrisserver: WebhookURL: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = 4
	}
	if cfg.WebhookBackoff < time.Second {
		cfg.WebhookBackoff = time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, faults: newFaults(), now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openStore(ctx, cfg.DBPath, s.now)
	if err != nil {
		return nil, fmt.Errorf("hrisserver: open %s: %w", cfg.DBPath, err)
	}
	s.store = st
	if cfg.SeedFile != "" {
		n, err := st.seed(ctx, cfg.SeedFile)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("hrisserver: seed: %w", err)
		}
		if n > 0 {
			s.log.Info("seeded database", "employees", n, "seed", cfg.SeedFile)
		}
	}
	s.hooks = newDeliverer([]byte(cfg.WebhookSecret), cfg.WebhookURL, cfg.WebhookAttempts, cfg.WebhookBackoff, s.log)
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler (API, admin API, health).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln until ctx is done, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to 10s) and returns nil.
// It does not Close the Server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("reference HRIS listening", "addr", ln.Addr().String(), "company", s.cfg.Company)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	s.log.Info("reference HRIS stopped")
	return err
}

// ListenAndServe listens on cfg.Addr and serves until ctx is done (see Serve).
func (s *Server) ListenAndServe(ctx context.Context) error {
	addr := s.cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:8090"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hrisserver: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Close finishes or cancels pending webhook deliveries and closes the
// database. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.hooks.close()
		s.closeErr = s.store.close()
	})
	return s.closeErr
}

package metrics

import (
	"context"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the intake's and the inbox's metrics.
const (
	IntakeRequests = "joinery_intake_requests_total"
	InboxEvents    = "joinery_inbox_events_total"
)

// intakeRoutes are the intake's endpoints (internal/intake Server.Handler);
// any other path is "other", so a scanner's paths never become labels.
var intakeRoutes = []string{"/hris/webhook", "/joiners", "/joiners:bulk", "/scim/v2/Bulk", "/healthz", "/readyz"}

// IntakeOutcome names what an intake answer's status code means for the
// request: started (201), accepted (200: already running or done, a date
// moved, a bulk upload answered row by row), held by the blast-radius
// guard (202), invalid (400, 413, 415, 422), unauthorized (401, 403),
// throttled (429), unavailable (503) and error (other 5xx).
func IntakeOutcome(status int) string {
	switch {
	case status == 201:
		return "started"
	case status == 202:
		return "held"
	case status >= 200 && status < 300:
		return "accepted"
	case status == 401 || status == 403:
		return "unauthorized"
	case status == 429:
		return "throttled"
	case status == 404 || status == 405:
		return "not_found"
	case status == 409:
		return "conflict"
	case status >= 400 && status < 500:
		return "invalid"
	case status == 503:
		return "unavailable"
	default:
		return "error"
	}
}

// IntakeTap returns a slog handler that passes every record to next and
// counts the intake's access-log records ("request", with path and
// status) by route and outcome.
//
// The intake writes exactly one such record per request, after its answer,
// so counting them counts what HR's system was told, through the same
// record an operator reads, without a second instrumentation path inside
// the intake. Only the route (from a fixed list) and the status become
// labels; request IDs, remote addresses and HR IDs never do.
func IntakeTap(reg prometheus.Registerer, next slog.Handler) (slog.Handler, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: IntakeRequests,
		Help: "HR intake requests by route and outcome (started, accepted, held, invalid, unauthorized, throttled, not_found, conflict, unavailable, error).",
	}, []string{"route", "outcome"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	// Export the series alerts divide by before the first request.
	for _, r := range []string{"/hris/webhook", "/joiners", "/joiners:bulk", "/scim/v2/Bulk"} {
		for _, o := range []string{"started", "accepted", "held", "invalid", "unauthorized", "throttled", "error"} {
			c.WithLabelValues(r, o)
		}
	}
	return &tap{next: next, observe: func(r slog.Record) {
		if r.Message != "request" {
			return
		}
		var path string
		status := 0
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "path":
				path = a.Value.String()
			case "status":
				status = int(a.Value.Int64())
			}
			return true
		})
		if status == 0 {
			return
		}
		c.WithLabelValues(oneOf(path, intakeRoutes, "other"), IntakeOutcome(status)).Inc()
	}}, nil
}

// inboxEvents maps the inbox's log messages to event names. Only these
// messages count; their attributes (the user, the joiner, the IP) are
// never read.
var inboxEvents = map[string]string{
	"signed in":                             "sign_in",
	"signed out":                            "sign_out",
	"decision signed":                       "decision_signed",
	"decision refused by the joiner":        "decision_refused",
	"credential unwrapped by its recipient": "credential_unwrapped",
}

// InboxTap returns a slog handler that passes every record to next and
// counts the inbox's events: sign-ins, signed and refused decisions,
// credential handovers, security warnings (records with security=true:
// failed sign-ins, forged forms, ...) and errors.
func InboxTap(reg prometheus.Registerer, next slog.Handler) (slog.Handler, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: InboxEvents,
		Help: "Approval inbox events: sign_in, sign_out, decision_signed, decision_refused, credential_unwrapped, security (warnings marked security), error.",
	}, []string{"event"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	for _, e := range []string{"sign_in", "sign_out", "decision_signed", "decision_refused", "credential_unwrapped", "security", "error"} {
		c.WithLabelValues(e)
	}
	return &tap{next: next, observe: func(r slog.Record) {
		if e, ok := inboxEvents[r.Message]; ok {
			c.WithLabelValues(e).Inc()
			return
		}
		security := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "security" && a.Value.Kind() == slog.KindBool && a.Value.Bool() {
				security = true
				return false
			}
			return true
		})
		switch {
		case security:
			c.WithLabelValues("security").Inc()
		case r.Level >= slog.LevelError:
			c.WithLabelValues("error").Inc()
		}
	}}, nil
}

// tap is a slog.Handler that observes records before passing them on. It
// observes a record even when next would drop it for its level, so the
// counts do not depend on JOINERY_LOG_LEVEL.
type tap struct {
	next    slog.Handler
	observe func(slog.Record)
	attrs   []slog.Attr
}

func (t *tap) Enabled(context.Context, slog.Level) bool { return true }

func (t *tap) Handle(ctx context.Context, r slog.Record) error {
	seen := r
	if len(t.attrs) > 0 {
		// next has these attributes already (WithAttrs); only the
		// observer needs them added.
		seen = r.Clone()
		seen.AddAttrs(t.attrs...)
	}
	t.observe(seen)
	if t.next.Enabled(ctx, r.Level) {
		return t.next.Handle(ctx, r)
	}
	return nil
}

func (t *tap) WithAttrs(as []slog.Attr) slog.Handler {
	// Attributes bound with With are kept for observing and handed to
	// next as well.
	return &tap{next: t.next.WithAttrs(as), observe: t.observe, attrs: append(copyAttrs(t.attrs), as...)}
}

func (t *tap) WithGroup(name string) slog.Handler {
	if strings.TrimSpace(name) == "" {
		return t
	}
	return &tap{next: t.next.WithGroup(name), observe: t.observe, attrs: copyAttrs(t.attrs)}
}

func copyAttrs(a []slog.Attr) []slog.Attr { return append([]slog.Attr(nil), a...) }

package metrics

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/joinery/joinery/activities"
)

// Names of the intake's and the inbox's metrics.
const (
	IntakeRequests = "joinery_intake_requests_total"
	IntakeRows     = "joinery_intake_rows_total"
	InboxEvents    = "joinery_inbox_events_total"
)

// IntakeRowRecord is the message of the intake's per-row log record
// (internal/intake RowRecord is this constant).
const IntakeRowRecord = "intake row"

// The vocabularies of joinery_intake_rows_total's labels. Every value
// outside them is "other": the records come from Joinery's own code, but
// what it logs as an outcome or reason is not re-checked anywhere else.
var (
	intakeSources = []string{"webhook", "api", "bulk", "scim"}
	// rowOutcomes are the row outcomes of internal/intake and internal/run
	// ("already running" is exported as already_running).
	rowOutcomes = []string{"started", "already_running", "already_done", "signalled", "ignored",
		"refused", "held", "hold_full", "invalid", "error"}
	// rowReasons are activities' eligibility reasons (Reason*), the only
	// reasons a refused row carries; every other row has "none".
	rowReasons = []string{activities.ReasonNotFound, activities.ReasonInactive, activities.ReasonTerminated,
		activities.ReasonRehire, activities.ReasonKindMismatch, activities.ReasonAlreadyProvisioned,
		activities.ReasonNoHireDate, activities.ReasonHireDatePassed}
	// requestOverrides are the outcomes a request's access-log record may
	// name instead of the one its status implies.
	requestOverrides = []string{"hold_full"}
)

// labelValue turns an outcome as the intake writes it ("already running",
// "hold-full") into a label value (already_running, hold_full).
func labelValue(v string) string {
	return strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(v))
}

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
// counts two of the intake's records:
//
//   - its access-log records ("request", with path and status) by route
//     and outcome: joinery_intake_requests_total. The outcome is the one
//     the status implies (IntakeOutcome) unless the record names one of
//     requestOverrides (a full hold is answered 429 or 503, and is neither
//     a flood nor Temporal being down);
//   - its row records (IntakeRowRecord: one per API request, webhook
//     event, bulk row and SCIM operation it judged) by source, outcome and
//     refusal reason: joinery_intake_rows_total. A bulk upload of 10,000
//     rows is one request and 10,000 rows.
//
// The intake writes exactly one access record per request, after its
// answer, and one row record per row as it is decided, so counting them
// counts what HR's system was told, through the same records an operator
// reads, without a second instrumentation path inside the intake. Only
// values from fixed vocabularies become labels; request IDs, remote
// addresses and HR IDs never do.
func IntakeTap(reg prometheus.Registerer, next slog.Handler) (slog.Handler, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: IntakeRequests,
		Help: "HR intake requests by route and outcome (started, accepted, held, hold_full, invalid, unauthorized, throttled, not_found, conflict, unavailable, error).",
	}, []string{"route", "outcome"})
	rows := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: IntakeRows,
		Help: "Rows the HR intake judged (an API request, a webhook event, a bulk row, a SCIM operation) by source, outcome (started, already_running, already_done, signalled, ignored, refused, held, hold_full, invalid, error) and the refusal's reason (none unless refused).",
	}, []string{"source", "outcome", "reason"})
	for _, cv := range []prometheus.Collector{c, rows} {
		if err := reg.Register(cv); err != nil {
			return nil, err
		}
	}
	// Export the series alerts divide by before the first request.
	for _, r := range []string{"/hris/webhook", "/joiners", "/joiners:bulk", "/scim/v2/Bulk"} {
		for _, o := range []string{"started", "accepted", "held", "hold_full", "invalid", "unauthorized", "throttled", "error"} {
			c.WithLabelValues(r, o)
		}
	}
	for _, src := range intakeSources {
		for _, o := range []string{"started", "held", "hold_full", "invalid", "error"} {
			rows.WithLabelValues(src, o, "none")
		}
	}
	return &tap{next: next, observe: func(r slog.Record) {
		switch r.Message {
		case "request":
		case IntakeRowRecord:
			var source, outcome, reason string
			r.Attrs(func(a slog.Attr) bool {
				switch a.Key {
				case "source":
					source = a.Value.String()
				case "outcome":
					outcome = a.Value.String()
				case "reason":
					reason = a.Value.String()
				}
				return true
			})
			rows.WithLabelValues(oneOf(source, intakeSources, "other"), oneOf(labelValue(outcome), rowOutcomes, "other"),
				oneOf(reason, rowReasons, "none")).Inc()
			return
		default:
			return
		}
		var path, override string
		status := 0
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "path":
				path = a.Value.String()
			case "status":
				status = int(a.Value.Int64())
			case "outcome":
				override = labelValue(a.Value.String())
			}
			return true
		})
		if status == 0 {
			return
		}
		outcome := IntakeOutcome(status)
		if slices.Contains(requestOverrides, override) {
			outcome = override
		}
		c.WithLabelValues(oneOf(path, intakeRoutes, "other"), outcome).Inc()
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

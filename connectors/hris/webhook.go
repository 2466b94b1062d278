package hris

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// BambooHR's webhook signature headers. BambooHR signs each delivery with the
// webhook's private key: X-BambooHR-Signature is the lowercase hex
// HMAC-SHA256 of the raw request body immediately followed by the
// X-BambooHR-Timestamp header value (Unix seconds), with no separator.
const (
	SignatureHeader = "X-BambooHR-Signature"
	TimestampHeader = "X-BambooHR-Timestamp"
)

// Webhook actions (BambooHR's field-based webhook "action" values).
const (
	ActionCreated = "Created"
	ActionUpdated = "Updated"
	ActionDeleted = "Deleted"
)

// DefaultMaxSkew is how far a webhook timestamp may be from the receiver's
// clock, either way, when Verifier.MaxSkew is zero.
const DefaultMaxSkew = 5 * time.Minute

// MaxWebhookEvents bounds the events one payload may carry; a larger batch is
// rejected as malformed rather than fanned out into that many joiners.
const MaxWebhookEvents = 1000

// Verification errors. Test with errors.Is.
var (
	// ErrBadSignature: the signature does not match the body and timestamp
	// under the secret, or the signature headers are missing or malformed
	// (then the error also matches ErrMalformedHeader). Answer 401.
	ErrBadSignature = errors.New("hris webhook: signature does not verify")
	// ErrMalformedHeader: a signature header is missing or not in the
	// expected format. Always reported together with ErrBadSignature.
	ErrMalformedHeader = errors.New("hris webhook: malformed signature header")
	// ErrStale: the signed timestamp is further than MaxSkew from now.
	ErrStale = errors.New("hris webhook: timestamp outside the accepted window")
	// ErrReplayed: this exact signed delivery was already accepted.
	ErrReplayed = errors.New("hris webhook: delivery already accepted (replay)")
	// ErrMalformedPayload: the signed body is not a webhook payload Joinery
	// understands. Answer 400.
	ErrMalformedPayload = errors.New("hris webhook: malformed payload")
	// ErrNoSecret: the Verifier has no secret; it refuses everything rather
	// than accept unsigned input.
	ErrNoSecret = errors.New("hris webhook: verifier has no secret configured")
)

// WebhookEvent is one employee change announced by the HRIS.
type WebhookEvent struct {
	// EmployeeID is the HRIS employee id.
	EmployeeID string
	// Action is ActionCreated, ActionUpdated or ActionDeleted.
	Action string
	// ChangedFields names the monitored fields that changed (may be empty).
	ChangedFields []string
	// Fields holds the posted field values as strings (never nil).
	Fields map[string]string
	// Timestamp is when the HRIS recorded the change, in UTC (zero if not sent).
	Timestamp time.Time
}

// Sign computes BambooHR's signature headers for body at ts: the hex
// HMAC-SHA256 under secret of body followed by the decimal Unix seconds of
// ts, and that decimal value as the timestamp header.
func Sign(secret, body []byte, ts time.Time) (sigHex, tsHeader string) {
	tsHeader = strconv.FormatInt(ts.Unix(), 10)
	return hex.EncodeToString(mac(secret, body, tsHeader)), tsHeader
}

func mac(secret, body []byte, tsHeader string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	m.Write([]byte(tsHeader))
	return m.Sum(nil)
}

// Verifier authenticates webhook deliveries. Its zero MaxSkew, Now and Seen
// mean 5 minutes, time.Now and no replay detection; use NewVerifier for a
// Verifier with a replay cache. It is safe for concurrent use when Seen is.
type Verifier struct {
	// Secret is the webhook's private key.
	Secret []byte
	// MaxSkew is the accepted distance between the signed timestamp and Now.
	MaxSkew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Seen remembers accepted deliveries so that a replay is refused.
	Seen ReplayCache
}

// NewVerifier returns a Verifier with the default skew and an in-memory
// replay cache of 100,000 deliveries.
func NewVerifier(secret []byte) *Verifier {
	return &Verifier{Secret: secret, MaxSkew: DefaultMaxSkew, Now: time.Now, Seen: NewMemoryReplayCache(100_000)}
}

var (
	sigHeaderRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	tsHeaderRE  = regexp.MustCompile(`^[0-9]{1,12}$`)
)

// Verify checks a delivery's signature, freshness and novelty, then parses it.
// body must be the raw request body exactly as received. The checks run in
// that order, so a stale or replayed delivery is only reported as such once
// its signature is known to be genuine.
//
// A delivery is remembered as seen once it verifies and parses. A sender that
// retries must therefore sign each attempt afresh with a new timestamp (the
// reference HRIS does, and waits at least a second between attempts because
// the timestamp has whole seconds): a byte-identical resend inside the window
// is refused as a replay.
func (v *Verifier) Verify(body []byte, signatureHeader, timestampHeader string) ([]WebhookEvent, error) {
	if len(v.Secret) == 0 {
		return nil, ErrNoSecret
	}
	sig := bytes.TrimSpace([]byte(signatureHeader))
	if !sigHeaderRE.Match(sig) {
		return nil, fmt.Errorf("%w: %w: %s must be 64 hex digits", ErrBadSignature, ErrMalformedHeader, SignatureHeader)
	}
	ts := string(bytes.TrimSpace([]byte(timestampHeader)))
	if !tsHeaderRE.MatchString(ts) {
		return nil, fmt.Errorf("%w: %w: %s must be Unix seconds", ErrBadSignature, ErrMalformedHeader, TimestampHeader)
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, sig); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, ErrMalformedHeader)
	}
	if !hmac.Equal(got, mac(v.Secret, body, ts)) {
		return nil, ErrBadSignature
	}

	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, ErrMalformedHeader)
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := time.Unix(secs, 0)
	n := now()
	if d := n.Sub(t); d > skew || d < -skew {
		return nil, fmt.Errorf("%w: signed at %s, now %s", ErrStale, t.UTC().Format(time.RFC3339), n.UTC().Format(time.RFC3339))
	}

	events, err := ParseWebhook(body)
	if err != nil {
		return nil, err
	}
	// Past t+skew the delivery is stale anyway, so the cache need not
	// remember it longer.
	if v.Seen != nil && v.Seen.Seen(hex.EncodeToString(got), t.Add(skew), n) {
		return nil, ErrReplayed
	}
	return events, nil
}

// webhookPayload is BambooHR's field-based JSON webhook body.
type webhookPayload struct {
	Employees []webhookEmployee `json:"employees"`
}

type webhookEmployee struct {
	ID            json.RawMessage `json:"id"`
	Timestamp     string          `json:"timestamp"`
	Action        string          `json:"action"`
	ChangedFields json.RawMessage `json:"changedFields"`
	Fields        json.RawMessage `json:"fields"`
}

// timestampLayouts are the forms BambooHR uses ("2026-01-31T18:42:00+0000")
// and RFC 3339 for good measure.
var timestampLayouts = []string{"2006-01-02T15:04:05-0700", time.RFC3339Nano, "2006-01-02 15:04:05"}

// ParseWebhook parses a BambooHR field-based JSON webhook body (without
// verifying it; use Verifier.Verify for untrusted input). Every error matches
// ErrMalformedPayload.
//
// It accepts what BambooHR (a PHP service) actually sends: numeric or string
// ids, "fields" and "changedFields" as empty arrays for Created and Deleted,
// and scalar field values of any JSON type, rendered as strings.
func ParseWebhook(body []byte) ([]WebhookEvent, error) {
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedPayload, err)
	}
	if len(p.Employees) == 0 {
		return nil, fmt.Errorf("%w: no employees", ErrMalformedPayload)
	}
	if len(p.Employees) > MaxWebhookEvents {
		return nil, fmt.Errorf("%w: %d events exceed the limit of %d", ErrMalformedPayload, len(p.Employees), MaxWebhookEvents)
	}
	out := make([]WebhookEvent, 0, len(p.Employees))
	for i, e := range p.Employees {
		ev, err := parseEvent(e)
		if err != nil {
			return nil, fmt.Errorf("%w: employees[%d]: %v", ErrMalformedPayload, i, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

func parseEvent(e webhookEmployee) (WebhookEvent, error) {
	var ev WebhookEvent
	id, err := jsonScalarString(e.ID)
	if err != nil || !employeeIDRE.MatchString(id) {
		return ev, errors.New("id is not a positive employee number")
	}
	ev.EmployeeID = id
	switch e.Action {
	case ActionCreated, ActionUpdated, ActionDeleted:
		ev.Action = e.Action
	default:
		return ev, fmt.Errorf("unknown action %q", truncate(e.Action, 40))
	}
	if e.Timestamp != "" {
		var perr error
		for _, layout := range timestampLayouts {
			if ev.Timestamp, perr = time.Parse(layout, e.Timestamp); perr == nil {
				break
			}
		}
		if perr != nil {
			return ev, fmt.Errorf("timestamp %q is not a date-time", truncate(e.Timestamp, 40))
		}
		ev.Timestamp = ev.Timestamp.UTC()
	}
	if len(e.ChangedFields) > 0 && string(e.ChangedFields) != "null" {
		if err := json.Unmarshal(e.ChangedFields, &ev.ChangedFields); err != nil {
			return ev, errors.New("changedFields is not a list of strings")
		}
	}
	ev.Fields = map[string]string{}
	f := bytes.TrimSpace(e.Fields)
	switch {
	case len(f) == 0 || string(f) == "null":
	case f[0] == '[':
		// PHP encodes an empty associative array as [].
		var empty []json.RawMessage
		if err := json.Unmarshal(f, &empty); err != nil || len(empty) != 0 {
			return ev, errors.New("fields is a non-empty list, not an object")
		}
	default:
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(f, &raw); err != nil {
			return ev, errors.New("fields is not an object")
		}
		for k, v := range raw {
			s, err := jsonScalarString(v)
			if err != nil {
				return ev, fmt.Errorf("field %q is not a scalar", truncate(k, 40))
			}
			ev.Fields[k] = s
		}
	}
	return ev, nil
}

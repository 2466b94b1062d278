// Package hris is Joinery's connector to a BambooHR-compatible HR system:
// it reads workers, writes back the attributes Joinery owns, and verifies the
// signed webhooks the HRIS sends when a worker is created or changed.
//
// The client speaks the BambooHR REST API subset Joinery needs (get employee,
// update employee, add employee) at BaseURL/api/gateway.php/{company}/v1, with
// HTTP Basic authentication (API key as user, "x" as password). It works
// against BambooHR itself and against Joinery's reference HRIS
// (internal/hrisserver).
//
// Every failure is a *connectors.Error with one of the Type values below, so
// that activities can turn it into a Temporal retry decision without knowing
// HTTP. The API key never appears in an error message.
package hris

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/joinery/joinery/connectors"
)

// System is the connectors.Error System value of every error of this package.
const System = "hris"

// Error types (connectors.Error.Type) returned by the client. They are stable
// names: activities and Temporal retry policies match on them.
const (
	// TypeNotFound: the HRIS has no employee with that id (HTTP 404). Permanent.
	TypeNotFound = "HRISNotFound"
	// TypeRateLimited: the HRIS kept answering 429 after the client's own
	// retries, or asked for a longer pause than the client waits. Transient.
	TypeRateLimited = "HRISRateLimited"
	// TypeUnavailable: network failure, timeout, 5xx or an unreadable
	// response. Transient.
	TypeUnavailable = "HRISUnavailable"
	// TypeUnauthorized: the HRIS refused the API key (401/403). Permanent.
	TypeUnauthorized = "HRISUnauthorized"
	// TypeRejected: the HRIS refused the request (another 4xx); Msg carries
	// the HRIS's own explanation. Permanent.
	TypeRejected = "HRISRejected"
	// TypeInvalidInput: the caller passed something the client will not send
	// (empty or non-numeric id, bad field name). Permanent.
	TypeInvalidInput = "HRISInvalidInput"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultRateLimitRetries = 3
	DefaultMaxRetryAfter    = 30 * time.Second
	DefaultUsernameField    = "customUsername"
)

// maxResponseBytes bounds what the client reads from one response, so that a
// misbehaving server cannot make a worker allocate without limit.
const maxResponseBytes = 1 << 20

// Config configures a Client.
type Config struct {
	// BaseURL is the HRIS origin, e.g. https://api.bamboohr.com or
	// http://127.0.0.1:8090; the client appends /api/gateway.php/{Company}/v1.
	BaseURL string
	// Company is BambooHR's company domain (the "acme" of acme.bamboohr.com).
	Company string
	// APIKey authenticates as HTTP Basic user (password "x"). Secret.
	APIKey string
	// Timeout bounds one HTTP attempt (default 30s). The caller's context
	// bounds the whole call, including waits for Retry-After.
	Timeout time.Duration
	// HTTPClient is used for every request (default: a new http.Client).
	HTTPClient *http.Client
	// UsernameField is the HRIS field holding the directory username
	// (default "customUsername"; in BambooHR, a custom field's API name).
	UsernameField string
	// RateLimitRetries is how often one call retries after a 429 before it
	// gives up with TypeRateLimited (default 3; negative disables retries).
	RateLimitRetries int
	// MaxRetryAfter caps the pause the client accepts from Retry-After
	// (default 30s). A longer requested pause is returned to the caller as
	// TypeRateLimited at once: Temporal's activity retry is the better place
	// to wait that long than a blocked HTTP call.
	MaxRetryAfter time.Duration
}

// Client talks to one HRIS tenant. It is safe for concurrent use.
type Client struct {
	base          *url.URL // scheme://host[/prefix]
	company       string
	apiKey        string
	timeout       time.Duration
	http          *http.Client
	usernameField string
	retries       int
	maxRetryAfter time.Duration
	// now and sleep are the clock and the pause of the 429 retry loop.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

var (
	companyRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,62}$`)
	fieldNameRE = regexp.MustCompile(`^[A-Za-z0-9_.]{1,64}$`)
	// employeeIDRE accepts BambooHR's positive numeric ids. "0" (BambooHR's
	// alias for "the API key's own employee") is refused on purpose: Joinery
	// must never read or write the integration user's record by accident.
	employeeIDRE = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)
)

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("hris: BaseURL is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("hris: BaseURL is not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("hris: BaseURL scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("hris: BaseURL has no host")
	}
	if u.User != nil {
		// Credentials in the URL would leak into every url.Error message.
		return nil, errors.New("hris: BaseURL must not contain credentials; use APIKey")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("hris: BaseURL must not have a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if !companyRE.MatchString(cfg.Company) {
		return nil, fmt.Errorf("hris: Company %q is not a valid company domain", cfg.Company)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("hris: APIKey is required")
	}
	if strings.ContainsFunc(cfg.APIKey, unicode.IsControl) || strings.Contains(cfg.APIKey, ":") {
		return nil, errors.New("hris: APIKey contains characters Basic authentication cannot carry")
	}
	if cfg.Timeout < 0 || cfg.MaxRetryAfter < 0 {
		return nil, errors.New("hris: Timeout and MaxRetryAfter must not be negative")
	}
	c := &Client{
		base:          u,
		company:       cfg.Company,
		apiKey:        cfg.APIKey,
		timeout:       cfg.Timeout,
		http:          cfg.HTTPClient,
		usernameField: cfg.UsernameField,
		retries:       cfg.RateLimitRetries,
		maxRetryAfter: cfg.MaxRetryAfter,
		now:           time.Now,
		sleep:         sleepCtx,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.usernameField == "" {
		c.usernameField = DefaultUsernameField
	}
	if !fieldNameRE.MatchString(c.usernameField) {
		return nil, fmt.Errorf("hris: UsernameField %q is not a valid field name", c.usernameField)
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRateLimitRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.maxRetryAfter == 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	return c, nil
}

// UsernameField returns the HRIS field that holds the directory username.
func (c *Client) UsernameField() string { return c.usernameField }

// GetFields reads the named fields of employee id. The result holds every
// field the HRIS returned, as strings: JSON null, a missing value and
// BambooHR's empty date "0000-00-00" all become "". A requested field the
// HRIS did not return (BambooHR omits fields the API user may not see) is
// absent from the map, so callers can tell "empty" from "unknown".
func (c *Client) GetFields(ctx context.Context, id string, fields []string) (map[string]string, error) {
	const op = "get-employee"
	if err := checkID(op, id); err != nil {
		return nil, err
	}
	names, err := checkFieldList(op, fields)
	if err != nil {
		return nil, err
	}
	// Field names are validated to [A-Za-z0-9_.], so they need no escaping
	// and the comma stays literal as BambooHR documents it.
	query := "fields=" + strings.Join(names, ",")
	resp, err := c.do(ctx, op, http.MethodGet, c.employeePath(id), query, nil)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, c.classify(op, id, resp)
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		return nil, connectors.Transient(System, op, TypeUnavailable, "HRIS returned a response that is not a JSON object", nil)
	}
	wanted := make(map[string]bool, len(names))
	for _, n := range names {
		wanted[n] = true
	}
	out := make(map[string]string, len(names))
	for k, v := range raw {
		if !wanted[k] {
			continue
		}
		s, err := jsonScalarString(v)
		if err != nil {
			return nil, connectors.Transient(System, op, TypeUnavailable, fmt.Sprintf("HRIS returned a non-scalar value for field %q", k), nil)
		}
		if s == "0000-00-00" {
			s = ""
		}
		out[k] = s
	}
	return out, nil
}

// GetWorker reads the standard worker record of employee id.
func (c *Client) GetWorker(ctx context.Context, id string) (Worker, error) {
	fields := c.workerFields()
	got, err := c.GetFields(ctx, id, fields)
	if err != nil {
		return Worker{}, err
	}
	return c.workerFromFields(id, got), nil
}

// UpdateFields writes the given fields of employee id unconditionally. It is
// idempotent: writing the same values twice leaves the same record. Prefer
// WriteBack, which never overwrites a value someone else changed.
func (c *Client) UpdateFields(ctx context.Context, id string, fields map[string]string) error {
	const op = "update-employee"
	if err := checkID(op, id); err != nil {
		return err
	}
	if len(fields) == 0 {
		return nil
	}
	for name := range fields {
		if err := checkWritableField(op, name); err != nil {
			return err
		}
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return connectors.Permanent(System, op, TypeInvalidInput, "cannot encode fields", err)
	}
	resp, err := c.do(ctx, op, http.MethodPost, c.employeePath(id)+"/", "", body)
	if err != nil {
		return err
	}
	if resp.status < 200 || resp.status > 299 {
		return c.classify(op, id, resp)
	}
	return nil
}

// AddEmployee creates an employee and returns the id the HRIS assigned (from
// the Location header of the 201 answer). It is NOT idempotent: BambooHR
// creates a second record when called twice. Joinery uses it for the demo and
// tests, never from a workflow activity.
func (c *Client) AddEmployee(ctx context.Context, fields map[string]string) (string, error) {
	const op = "add-employee"
	if fields["firstName"] == "" || fields["lastName"] == "" {
		return "", connectors.Permanent(System, op, TypeInvalidInput, "firstName and lastName are required", nil)
	}
	for name := range fields {
		if err := checkWritableField(op, name); err != nil {
			return "", err
		}
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return "", connectors.Permanent(System, op, TypeInvalidInput, "cannot encode fields", err)
	}
	resp, err := c.do(ctx, op, http.MethodPost, c.apiPath()+"/employees/", "", body)
	if err != nil {
		return "", err
	}
	if resp.status != http.StatusCreated && resp.status != http.StatusOK {
		return "", c.classify(op, "", resp)
	}
	loc := resp.header.Get("Location")
	id := path.Base(strings.TrimRight(loc, "/"))
	if !employeeIDRE.MatchString(id) {
		return "", connectors.Transient(System, op, TypeUnavailable, "HRIS created the employee but its Location header names no employee id", nil)
	}
	return id, nil
}

// apiPath is the escaped path prefix of every API call.
func (c *Client) apiPath() string {
	return c.base.EscapedPath() + "/api/gateway.php/" + url.PathEscape(c.company) + "/v1"
}

func (c *Client) employeePath(id string) string {
	return c.apiPath() + "/employees/" + id
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one logical request, retrying inside the call while the HRIS
// answers 429 and the Retry-After pause fits the cap and the context.
func (c *Client) do(ctx context.Context, op, method, escapedPath, rawQuery string, body []byte) (*response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, op, method, escapedPath, rawQuery, body)
		if err != nil {
			return nil, err
		}
		if resp.status != http.StatusTooManyRequests {
			return resp, nil
		}
		msg := c.hrisMessage(resp)
		if attempt >= c.retries {
			return nil, connectors.Transient(System, op, TypeRateLimited,
				fmt.Sprintf("HRIS rate limit persisted after %d retries%s", attempt, msg), nil)
		}
		wait := retryAfter(resp.header, c.now(), attempt)
		if wait > c.maxRetryAfter {
			return nil, connectors.Transient(System, op, TypeRateLimited,
				fmt.Sprintf("HRIS asks to wait %s, longer than the client's cap of %s%s", wait, c.maxRetryAfter, msg), nil)
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			return nil, connectors.Transient(System, op, TypeRateLimited,
				fmt.Sprintf("HRIS asks to wait %s, beyond the caller's deadline%s", wait, msg), nil)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, connectors.Transient(System, op, TypeRateLimited, "cancelled while waiting out the HRIS rate limit", err)
		}
	}
}

// once performs a single HTTP exchange and reads the whole (bounded) body.
func (c *Client) once(ctx context.Context, op, method, escapedPath, rawQuery string, body []byte) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = ""
	u.RawPath = ""
	u.RawQuery = ""
	target := u.String() + escapedPath
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, target, rd)
	if err != nil {
		return nil, connectors.Permanent(System, op, TypeInvalidInput, "cannot build request", err)
	}
	req.SetBasicAuth(c.apiKey, "x")
	// BambooHR answers XML unless asked for JSON.
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "joinery-hris/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the URL, which carries no credentials (New refuses
		// userinfo), so the cause is safe to keep.
		return nil, connectors.Transient(System, op, TypeUnavailable, "HRIS unreachable", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, connectors.Transient(System, op, TypeUnavailable, "reading HRIS response failed", err)
	}
	if len(data) > maxResponseBytes {
		return nil, connectors.Transient(System, op, TypeUnavailable, "HRIS response exceeds 1 MiB", nil)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// classify turns an unexpected status into a classified error.
func (c *Client) classify(op, id string, resp *response) error {
	msg := c.hrisMessage(resp)
	switch {
	case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
		return connectors.Permanent(System, op, TypeUnauthorized,
			fmt.Sprintf("HRIS refused the credentials (HTTP %d)%s", resp.status, msg), nil)
	case resp.status == http.StatusNotFound:
		what := "resource"
		if id != "" {
			what = "employee " + id
		}
		return connectors.Permanent(System, op, TypeNotFound,
			fmt.Sprintf("HRIS has no %s (HTTP 404)%s", what, msg), nil)
	case resp.status == http.StatusTooManyRequests:
		return connectors.Transient(System, op, TypeRateLimited, "HRIS rate limit"+msg, nil)
	case resp.status == http.StatusRequestTimeout || resp.status == http.StatusTooEarly:
		// 408: the server gave up waiting for the request; 425: it will not
		// risk a replayed early request. Both invite the same request again.
		return connectors.Transient(System, op, TypeUnavailable,
			fmt.Sprintf("HRIS asked to retry (HTTP %d)%s", resp.status, msg), nil)
	case resp.status >= 500:
		return connectors.Transient(System, op, TypeUnavailable,
			fmt.Sprintf("HRIS server error (HTTP %d)%s", resp.status, msg), nil)
	case resp.status >= 400:
		return connectors.Permanent(System, op, TypeRejected,
			fmt.Sprintf("HRIS rejected the request (HTTP %d)%s", resp.status, msg), nil)
	default:
		return connectors.Transient(System, op, TypeUnavailable,
			fmt.Sprintf("unexpected HRIS status %d%s", resp.status, msg), nil)
	}
}

// hrisMessage extracts the HRIS's own error text (BambooHR's
// X-BambooHR-Error-Message header, else a JSON {"error": "..."} body) as
// ": text", cleaned for logs and with the API key redacted. Empty when none.
func (c *Client) hrisMessage(resp *response) string {
	msg := resp.header.Get("X-BambooHR-Error-Message")
	if msg == "" {
		var body struct {
			Error any `json:"error"`
		}
		if json.Unmarshal(resp.body, &body) == nil {
			switch e := body.Error.(type) {
			case string:
				msg = e
			case map[string]any:
				if m, ok := e["message"].(string); ok {
					msg = m
				}
			}
		}
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(msg))
	if c.apiKey != "" {
		msg = strings.ReplaceAll(msg, c.apiKey, "[redacted]")
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// retryAfter returns how long to wait after a 429: the Retry-After header in
// seconds or as an HTTP date, else an exponential default (1s, 2s, 4s, ...).
func retryAfter(h http.Header, now time.Time, attempt int) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			if secs > int64(24*time.Hour/time.Second) {
				return 24 * time.Hour
			}
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d
			}
			return 0
		}
	}
	if attempt > 5 {
		attempt = 5
	}
	return time.Second << attempt
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jsonScalarString renders a JSON scalar as the string BambooHR means by it.
func jsonScalarString(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '{', '[':
		return "", errors.New("not a scalar")
	default: // number, true, false
		return string(v), nil
	}
}

func checkID(op, id string) error {
	if !employeeIDRE.MatchString(id) {
		return connectors.Permanent(System, op, TypeInvalidInput,
			fmt.Sprintf("employee id %q is not a positive number", truncate(id, 40)), nil)
	}
	return nil
}

// checkFieldList validates names and removes duplicates, keeping order.
func checkFieldList(op string, fields []string) ([]string, error) {
	if len(fields) == 0 {
		return nil, connectors.Permanent(System, op, TypeInvalidInput, "no fields requested", nil)
	}
	seen := make(map[string]bool, len(fields))
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if !fieldNameRE.MatchString(f) {
			return nil, connectors.Permanent(System, op, TypeInvalidInput,
				fmt.Sprintf("field name %q is not valid", truncate(f, 70)), nil)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

func checkWritableField(op, name string) error {
	if !fieldNameRE.MatchString(name) {
		return connectors.Permanent(System, op, TypeInvalidInput,
			fmt.Sprintf("field name %q is not valid", truncate(name, 70)), nil)
	}
	if name == FieldID || name == FieldLastChanged {
		return connectors.Permanent(System, op, TypeInvalidInput,
			fmt.Sprintf("field %q is not writable", name), nil)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

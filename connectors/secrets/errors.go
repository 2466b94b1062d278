package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// system is the connectors.Error System of every error from this package.
const system = "vault"

// Error types (connectors.Error.Type) this package produces. They become
// Temporal application error types, so they are stable.
const (
	// TypeUnavailable: network failure, timeout, 5xx, 429, standby — retryable.
	TypeUnavailable = "VaultUnavailable"
	// TypeSealed: Vault answered but is sealed — retryable.
	TypeSealed = "VaultSealed"
	// TypePermissionDenied: 403; the message names the path — permanent.
	TypePermissionDenied = "VaultPermissionDenied"
	// TypeRejected: 400 (or another 4xx) with Vault's reasons — permanent.
	TypeRejected = "VaultRejected"
	// TypeNotFound: the secret, version, policy or route does not exist — permanent.
	TypeNotFound = "VaultNotFound"
	// TypeInvalidRequest: refused by this package before reaching Vault
	// (bad path segment, bad TTL, bad configuration) — permanent.
	TypeInvalidRequest = "VaultInvalidRequest"
)

// classify turns an error from the vault/api client into a *connectors.Error.
// path is the Vault API path the request addressed; it is safe to record.
// Errors that are already classified pass through unchanged.
func classify(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	var re *vault.ResponseError
	if !errors.As(err, &re) {
		if errors.Is(err, context.DeadlineExceeded) {
			return connectors.Transient(system, op, TypeUnavailable, "Vault did not answer in time on "+path, err)
		}
		if errors.Is(err, context.Canceled) {
			return connectors.Transient(system, op, TypeUnavailable, "request to Vault cancelled on "+path, err)
		}
		// Connection refused, DNS, TLS, a proxy answering garbage: nothing
		// says Vault refused the request itself, so it is worth retrying.
		return connectors.Transient(system, op, TypeUnavailable, "Vault is unreachable for "+path, err)
	}
	reasons := vaultReasons(re)
	cause := responseCause{re}
	switch code := re.StatusCode; {
	case code == http.StatusServiceUnavailable && mentionsSealed(re):
		return connectors.Transient(system, op, TypeSealed, "Vault is sealed", cause)
	case code == http.StatusForbidden:
		return connectors.Permanent(system, op, TypePermissionDenied, "permission denied on "+path+reasons, cause)
	case code == http.StatusNotFound:
		return connectors.Permanent(system, op, TypeNotFound, "nothing at "+path+reasons, cause)
	case code == http.StatusTooManyRequests:
		return connectors.Transient(system, op, TypeUnavailable, "Vault rate-limited the request on "+path+reasons, cause)
	case code == http.StatusPreconditionFailed:
		// 412: a performance standby has not caught up yet; it will.
		return connectors.Transient(system, op, TypeUnavailable, "Vault is not consistent yet on "+path+reasons, cause)
	case code >= 500:
		return connectors.Transient(system, op, TypeUnavailable, fmt.Sprintf("Vault answered %d on %s%s", code, path, reasons), cause)
	default:
		return connectors.Permanent(system, op, TypeRejected, fmt.Sprintf("Vault rejected the request on %s (%d)%s", path, code, reasons), cause)
	}
}

// vaultReasons formats Vault's error strings as a message suffix. Vault does
// not echo request bodies in them, so they carry no secret.
func vaultReasons(re *vault.ResponseError) string {
	var parts []string
	for _, e := range re.Errors {
		// Vault nests multierrors as indented lines; history wants one line.
		if e = strings.Join(strings.Fields(e), " "); e != "" {
			parts = append(parts, e)
		}
	}
	if len(parts) == 0 || re.RawError {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// responseCause keeps Vault's *vault.ResponseError reachable through
// errors.As while printing it as one short line: its own text spans several
// lines and repeats what the connectors.Error message already says.
type responseCause struct{ re *vault.ResponseError }

func (r responseCause) Error() string {
	target := r.re.URL
	if u, err := url.Parse(target); err == nil {
		target = u.Path
	}
	return fmt.Sprintf("HTTP %d from %s %s", r.re.StatusCode, r.re.HTTPMethod, target)
}

func (r responseCause) Unwrap() error { return r.re }

func mentionsSealed(re *vault.ResponseError) bool {
	for _, e := range re.Errors {
		if strings.Contains(strings.ToLower(e), "sealed") {
			return true
		}
	}
	return false
}

// statusCode returns the HTTP status of a Vault response error, or 0.
func statusCode(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// invalid builds the error for a request refused before reaching Vault.
func invalid(op, msg string) error {
	return connectors.Permanent(system, op, TypeInvalidRequest, msg, nil)
}

// withheld protects against a callback error that quotes a secret (a
// directory server echoing the password it refused, a mail relay echoing the
// token). Such an error is replaced by one that keeps its classification and
// drops its text; any other error is returned wrapped with context.
func withheld(op, context string, err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	for _, s := range secrets {
		if s == "" || !strings.Contains(text, s) {
			continue
		}
		out := &connectors.Error{System: system, Op: op, Type: "CredentialCallbackFailed", Retryable: true}
		var ce *connectors.Error
		if errors.As(err, &ce) {
			out.System, out.Op, out.Type, out.Retryable = ce.System, ce.Op, ce.Type, ce.Retryable
		}
		out.Msg = context + " failed; the error text was withheld because it contained secret material"
		return out
	}
	return fmt.Errorf("%s: %w", context, err)
}

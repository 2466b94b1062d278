// Package connectors holds what every connector shares: the error
// classification the activities turn into Temporal retry decisions.
//
// Each connector (directory, secrets, hris) lives in its own sub-package behind
// a small interface. Their errors are *Error values so that one activity helper
// can decide, without knowing the system, whether Temporal should retry.
package connectors

import (
	"errors"
	"fmt"
)

// Error is a classified connector failure.
//
// Msg must never contain a secret value: it ends up in workflow history.
type Error struct {
	// System names the external system: "ldap", "vault", "hris".
	System string
	// Op is the operation that failed, e.g. "add", "kv-put", "update-employee".
	Op string
	// Type is a stable, CamelCase name used as the Temporal application error
	// type, e.g. "DirectoryInvalidCredentials", "VaultPermissionDenied".
	Type string
	// Retryable is true for transient faults (network, busy, 5xx, sealed).
	Retryable bool
	// Msg is a human-readable explanation safe to log and record.
	Msg string
	// Err is the underlying cause, kept for errors.Is/As.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s %s: %s: %v", e.System, e.Op, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s %s: %s", e.System, e.Op, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a transient fault worth retrying.
// Unclassified errors count as retryable: an unknown failure is more often a
// flaky network than a permanent refusal, and Temporal's retry policy bounds it.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Retryable
	}
	return true
}

// Permanent builds a non-retryable classified error.
func Permanent(system, op, typ, msg string, cause error) *Error {
	return &Error{System: system, Op: op, Type: typ, Msg: msg, Err: cause}
}

// Transient builds a retryable classified error.
func Transient(system, op, typ, msg string, cause error) *Error {
	return &Error{System: system, Op: op, Type: typ, Retryable: true, Msg: msg, Err: cause}
}

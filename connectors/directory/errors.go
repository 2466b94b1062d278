package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/joinery/joinery/connectors"
)

// Error types (connectors.Error.Type) this package returns. They are stable:
// activities and workflows match on them.
const (
	// TypeUnavailable: busy, unavailable, network failure or timeout. Retryable.
	TypeUnavailable = "DirectoryUnavailable"
	// TypeInvalidCredentials: the bind was refused (49).
	TypeInvalidCredentials = "DirectoryInvalidCredentials"
	// TypeAccessDenied: the bind DN lacks the right (50).
	TypeAccessDenied = "DirectoryAccessDenied"
	// TypeSchemaViolation: the entry does not fit the schema (65, 17, 21).
	TypeSchemaViolation = "DirectorySchemaViolation"
	// TypeNoSuchEntry: the entry or its parent does not exist (32).
	TypeNoSuchEntry = "DirectoryNoSuchEntry"
	// TypeEntryExists: an entry already exists where one was to be added (68)
	// outside a claim.
	TypeEntryExists = "DirectoryEntryExists"
	// TypeConstraintViolation: a server constraint refused the change (19),
	// e.g. an AD password policy.
	TypeConstraintViolation = "DirectoryConstraintViolation"
	// TypeTLS: the server certificate could not be verified.
	TypeTLS = "DirectoryTLSError"
	// TypeInsecureTransport: the operation needs ldaps:// or StartTLS.
	TypeInsecureTransport = "DirectoryInsecureTransport"
	// TypeInvalidInput: the request is malformed (missing employee id,
	// protected attribute in Extra, non-numeric id with POSIX, ...).
	TypeInvalidInput = "DirectoryInvalidInput"
	// TypeInvalidUsername: the profile cannot store the username.
	TypeInvalidUsername = "DirectoryInvalidUsername"
	// TypeDuplicateEmployeeID: more than one entry holds the employee id.
	TypeDuplicateEmployeeID = "DirectoryDuplicateEmployeeID"
	// TypeClaimConflict: another entry for the same person appeared while
	// claiming and this claim withdrew its own. Retryable: the retry
	// reports the survivor or claims afresh.
	TypeClaimConflict = "DirectoryClaimConflict"
	// TypeDuplicateOwner: more than one entry carries one joiner's marker.
	TypeDuplicateOwner = "DirectoryDuplicateOwner"
	// TypeUsernameTaken: another joiner holds the username; try the next
	// candidate. Wraps ErrUsernameTaken.
	TypeUsernameTaken = "UsernameTaken"
	// TypeUsernameExhausted: every candidate is taken. Wraps ErrNoCandidate.
	TypeUsernameExhausted = "UsernameExhausted"
	// TypeNotOwner: the entry does not carry the expected joiner's
	// ownership marker (or the directory refused the change because the
	// service account did not create it). Wraps ErrNotOwner.
	TypeNotOwner = "DirectoryNotOwner"
	// TypeAlreadyProvisioned: a claim found an entry for the employee id
	// carrying another joiner's marker, or an earlier run of this joiner.
	// Wraps ErrAlreadyProvisioned and an *ExistingEntryError.
	TypeAlreadyProvisioned = "AlreadyProvisioned"
	// TypeNeedsOperator: a claim found an entry for the employee id without
	// Joinery's marker (created by another system or by hand). Wraps
	// ErrNeedsOperator and an *ExistingEntryError.
	TypeNeedsOperator = "NeedsOperator"
	// TypeDirectoryError: any other LDAP result; the message carries the
	// result code and the server's diagnostic.
	TypeDirectoryError = "DirectoryError"
)

// transientCodes are LDAP results worth retrying: the server is overloaded,
// shutting down or unreachable, or the request ran out of time. Checked
// against RFC 4511 and what servers send in practice:
//   - 1 operationsError: RFC 4511 A.2 defines it as an operation out of
//     sequence with others on the connection (a StartTLS with operations
//     outstanding); AD also answers it, 000004DC, for an operation on a
//     connection whose bind was lost, and OpenLDAP for an internal failure
//     of the operation. Every request here runs on a fresh, freshly bound
//     connection (session.go), so a retry is the useful answer; a
//     persistent one ends with the activity's retry window.
//   - 11 adminLimitExceeded: RFC 4511 A.2, an administrative limit was
//     exceeded; in practice a server-side limit (concurrent operations per
//     connection or server, lookthrough) that frees up as other clients
//     finish.
//   - 80 other: OpenLDAP's "internal error" (e.g. a backend busy during
//     checkpoint); retried for the same reason as 1. back-mdb's add
//     answers LDAP_OTHER for every failed step of its transaction (begin,
//     cursor, next id, index, commit: servers/slapd/back-mdb/add.c).
//
// Two exceptions are decided on the diagnostic (see exceptions below):
//   - 11 with OpenLDAP's "entry is too big" (back-mdb's id2entry_add: the
//     encoded entry exceeds what the database stores) is permanent: the
//     same entry never fits, so retrying only delays the clear error.
//   - 53 unwillingToPerform is permanent (RFC 4511 A.2: the server will not
//     do this operation; AD answers it for a password that fails policy,
//     0000052D, or is set over a plain connection, 0000001F; OpenLDAP for
//     a write to a read-only database or replica, "operation restricted",
//     "shadow context; no update referral") - except AD's 00002010,
//     ERROR_DS_NO_RIDS_ALLOCATED (Win32 8208, "unable to allocate a
//     relative identifier"): a domain controller that used up its RID pool
//     and has not yet got a new one from the RID master refuses to create
//     security principals until it has (Microsoft KB 316201; MS-SAMR
//     3.1.1.9.2.1), so that one is retried. 00002011 (ERROR_DS_NO_MORE_RIDS,
//     the domain's global pool exhausted) stays permanent.
var transientCodes = []uint16{
	ldap.LDAPResultOperationsError,
	ldap.LDAPResultAdminLimitExceeded,
	ldap.LDAPResultOther,
	ldap.LDAPResultTimeLimitExceeded,
	ldap.LDAPResultBusy,
	ldap.LDAPResultUnavailable,
	ldap.LDAPResultServerDown,
	ldap.LDAPResultTimeout,
	ldap.LDAPResultConnectError,
	ldap.ErrorNetwork,
}

// classifyCtx classifies err, first attributing failures to ctx when its
// deadline passed or it was cancelled: the connector closes the connection
// then, and the LDAP error that results only says "connection closed".
func classifyCtx(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return connectors.Transient(System, op, TypeUnavailable,
			fmt.Sprintf("directory did not answer in time (%v)", ctxErr), err)
	}
	return classify(op, err)
}

// classify maps an error from go-ldap to a *connectors.Error.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return connectors.Transient(System, op, TypeUnavailable, "directory did not answer in time", err)
	}
	if isCertificateError(err) {
		// Retrying cannot fix a certificate the client does not trust.
		return connectors.Permanent(System, op, TypeTLS, "server certificate not trusted", err)
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		// Not an LDAP result: go-ldap reports some I/O failures as plain
		// errors. Treat them as the network faults they are.
		return connectors.Transient(System, op, TypeUnavailable, "directory unreachable", err)
	}
	code := le.ResultCode
	diag := ""
	if le.Err != nil {
		diag = le.Err.Error()
	}
	switch {
	case code == ldap.LDAPResultAdminLimitExceeded && strings.Contains(diag, "entry is too big"):
		return connectors.Permanent(System, op, TypeDirectoryError, resultText(le), err)
	case code == ldap.LDAPResultUnwillingToPerform && strings.HasPrefix(strings.TrimSpace(diag), "00002010"):
		return connectors.Transient(System, op, TypeUnavailable, "directory cannot allocate an identifier yet (RID pool)", err)
	case ldap.IsErrorAnyOf(err, transientCodes...):
		return connectors.Transient(System, op, TypeUnavailable, "directory unavailable", err)
	case code == ldap.LDAPResultInvalidCredentials:
		return connectors.Permanent(System, op, TypeInvalidCredentials, "invalid credentials", err)
	case code == ldap.LDAPResultInsufficientAccessRights:
		return connectors.Permanent(System, op, TypeAccessDenied, "access denied", err)
	case code == ldap.LDAPResultObjectClassViolation, code == ldap.LDAPResultUndefinedAttributeType,
		code == ldap.LDAPResultInvalidAttributeSyntax:
		return connectors.Permanent(System, op, TypeSchemaViolation, "schema violation", err)
	case code == ldap.LDAPResultNoSuchObject:
		return connectors.Permanent(System, op, TypeNoSuchEntry, "no such entry", err)
	case code == ldap.LDAPResultEntryAlreadyExists:
		return connectors.Permanent(System, op, TypeEntryExists, "entry already exists", err)
	case code == ldap.LDAPResultConstraintViolation:
		return connectors.Permanent(System, op, TypeConstraintViolation, "constraint violation", err)
	default:
		return connectors.Permanent(System, op, TypeDirectoryError, resultText(le), err)
	}
}

// resultText renders an LDAP result as "result 53 (Unwilling To Perform):
// diagnostic" for results no Type describes; the typed cases keep a short
// message because the wrapped *ldap.Error already prints code and
// diagnostic. Diagnostics come from the server and never echo a password.
func resultText(le *ldap.Error) string {
	name := ldap.LDAPResultCodeMap[le.ResultCode]
	if name == "" {
		name = "unknown"
	}
	s := fmt.Sprintf("result %d (%s)", le.ResultCode, name)
	if le.Err != nil {
		if diag := strings.TrimSpace(le.Err.Error()); diag != "" {
			s += ": " + diag
		}
	}
	return s
}

func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return true
	}
	// go-ldap's StartTLS formats the handshake error into a network-error
	// text ("TLS handshake failed (...x509: ...)") instead of wrapping it,
	// so the certificate failure is only visible in the message; without
	// this an untrusted server would count as a transient outage.
	msg := err.Error()
	return strings.Contains(msg, "TLS handshake failed") &&
		(strings.Contains(msg, "x509:") || strings.Contains(msg, "failed to verify certificate"))
}

// invalidInput reports a request the connector refuses before sending
// anything, choosing the type from the sentinel the profile wrapped.
func invalidInput(op string, err error) error {
	switch {
	case errors.Is(err, ErrInvalidUsername):
		return connectors.Permanent(System, op, TypeInvalidUsername, "refused before sending", err)
	case errors.Is(err, ErrInsecureTransport):
		return connectors.Permanent(System, op, TypeInsecureTransport, "refused before sending", err)
	default:
		return connectors.Permanent(System, op, TypeInvalidInput, "refused before sending", err)
	}
}

// usernameTaken is the error of a claim lost to another joiner.
func usernameTaken(username, holderDN string) error {
	return connectors.Permanent(System, "claim", TypeUsernameTaken,
		fmt.Sprintf("username %q is held by %s", username, holderDN), ErrUsernameTaken)
}

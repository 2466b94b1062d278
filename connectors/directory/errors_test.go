package directory

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

func TestClassify(t *testing.T) {
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name      string
		err       error
		typ       string
		retryable bool
		contains  string
	}{
		{"busy", ldap.NewError(ldap.LDAPResultBusy, errors.New("too busy")), TypeUnavailable, true, "Result Code 51"},
		{"unavailable", ldap.NewError(ldap.LDAPResultUnavailable, errors.New("shutting down")), TypeUnavailable, true, "shutting down"},
		{"network", ldap.NewError(ldap.ErrorNetwork, netErr), TypeUnavailable, true, "connection refused"},
		{"client timeout", ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection timed out")), TypeUnavailable, true, "timed out"},
		{"server down", ldap.NewError(ldap.LDAPResultServerDown, errors.New("down")), TypeUnavailable, true, ""},
		{"time limit", ldap.NewError(ldap.LDAPResultTimeLimitExceeded, errors.New("")), TypeUnavailable, true, ""},
		{"operations error", ldap.NewError(ldap.LDAPResultOperationsError, errors.New("internal error")), TypeUnavailable, true, "internal error"},
		{"admin limit", ldap.NewError(ldap.LDAPResultAdminLimitExceeded, errors.New("too many")), TypeUnavailable, true, ""},
		{"other (OpenLDAP internal error)", ldap.NewError(ldap.LDAPResultOther, errors.New("txn_begin failed")), TypeUnavailable, true, ""},
		{"unwilling (AD password policy) stays permanent", ldap.NewError(ldap.LDAPResultUnwillingToPerform, errors.New("0000052D: SvcErr")), TypeDirectoryError, false, "0000052D"},
		{"unwilling (AD waiting for a RID pool) retries", ldap.NewError(ldap.LDAPResultUnwillingToPerform,
			errors.New("00002010: SvcErr: DSID-031A1254, problem 5003 (WILL_NOT_PERFORM), data 0")), TypeUnavailable, true, ""},
		{"unwilling (AD global RID pool exhausted) stays permanent", ldap.NewError(ldap.LDAPResultUnwillingToPerform,
			errors.New("00002011: SvcErr: DSID-031A1254, problem 5003 (WILL_NOT_PERFORM), data 0")), TypeDirectoryError, false, "00002011"},
		{"unwilling (OpenLDAP read-only replica) stays permanent", ldap.NewError(ldap.LDAPResultUnwillingToPerform,
			errors.New("shadow context; no update referral")), TypeDirectoryError, false, "shadow context"},
		{"admin limit (OpenLDAP entry too big) is permanent", ldap.NewError(ldap.LDAPResultAdminLimitExceeded,
			errors.New("entry is too big")), TypeDirectoryError, false, "result 11"},
		{"plain I/O error", errors.New("unable to send request: broken pipe"), TypeUnavailable, true, "broken pipe"},
		{"context", fmt.Errorf("bind: %w", context.DeadlineExceeded), TypeUnavailable, true, ""},
		{"invalid credentials", ldap.NewError(ldap.LDAPResultInvalidCredentials, errors.New("")), TypeInvalidCredentials, false, "invalid credentials"},
		{"access denied", ldap.NewError(ldap.LDAPResultInsufficientAccessRights, errors.New("no write access to parent")), TypeAccessDenied, false, "no write access"},
		{"objectclass violation", ldap.NewError(ldap.LDAPResultObjectClassViolation, errors.New("attribute 'loginShell' not allowed")), TypeSchemaViolation, false, "loginShell"},
		{"undefined attribute", ldap.NewError(ldap.LDAPResultUndefinedAttributeType, errors.New("nope: attribute type undefined")), TypeSchemaViolation, false, "Result Code 17"},
		{"no such object", ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("")), TypeNoSuchEntry, false, "Result Code 32"},
		{"exists", ldap.NewError(ldap.LDAPResultEntryAlreadyExists, errors.New("")), TypeEntryExists, false, ""},
		{"constraint", ldap.NewError(ldap.LDAPResultConstraintViolation, errors.New("0000052D: password policy")), TypeConstraintViolation, false, "0000052D"},
		{"other code keeps code and diagnostic", ldap.NewError(ldap.LDAPResultUnwillingToPerform, errors.New("0000001F: SvcErr: DSID-031A12D2")),
			TypeDirectoryError, false, "result 53 (Unwilling To Perform): 0000001F"},
		{"unknown code", ldap.NewError(4242, errors.New("odd")), TypeDirectoryError, false, "result 4242 (unknown): odd"},
		{"wrapped ldap error", fmt.Errorf("add uid=x: %w", ldap.NewError(ldap.LDAPResultBusy, errors.New(""))), TypeUnavailable, true, ""},
		{"certificate", ldap.NewError(ldap.ErrorNetwork, x509.UnknownAuthorityError{}), TypeTLS, false, "not trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify("op", tt.err)
			var ce *connectors.Error
			require.ErrorAs(t, got, &ce)
			require.Equal(t, System, ce.System)
			require.Equal(t, "op", ce.Op)
			require.Equal(t, tt.typ, ce.Type)
			require.Equal(t, tt.retryable, ce.Retryable)
			require.Equal(t, tt.retryable, connectors.IsRetryable(got))
			require.Contains(t, got.Error(), tt.contains)
			require.ErrorIs(t, got, tt.err, "the cause stays reachable")
		})
	}
}

func TestClassifyPassesThrough(t *testing.T) {
	require.NoError(t, classify("op", nil))
	taken := usernameTaken("jsmith", "uid=jsmith,ou=people,dc=x")
	require.Same(t, taken, classify("op", taken))
	require.ErrorIs(t, taken, ErrUsernameTaken)
	require.False(t, connectors.IsRetryable(taken))
}

func TestClassifyCtxBlamesTheDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// After the connector closes the connection on ctx's end, go-ldap only
	// says "connection closed"; classifyCtx reports the real reason.
	got := classifyCtx(ctx, "bind", ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection closed")))
	var ce *connectors.Error
	require.ErrorAs(t, got, &ce)
	require.Equal(t, TypeUnavailable, ce.Type)
	require.True(t, ce.Retryable)
	require.Contains(t, ce.Msg, "context canceled")
}

func TestInvalidInputTypes(t *testing.T) {
	for _, tt := range []struct {
		err error
		typ string
	}{
		{fmt.Errorf("%w: too long", ErrInvalidUsername), TypeInvalidUsername},
		{fmt.Errorf("%w: AD", ErrInsecureTransport), TypeInsecureTransport},
		{errors.New("employee id is required"), TypeInvalidInput},
	} {
		var ce *connectors.Error
		require.ErrorAs(t, invalidInput("claim", tt.err), &ce)
		require.Equal(t, tt.typ, ce.Type)
		require.False(t, ce.Retryable)
		require.ErrorIs(t, ce, tt.err)
	}
}

// StartTLS failures arrive from go-ldap as network errors whose only trace of
// the certificate problem is the text; they must still be permanent.
func TestStartTLSCertificateFailureIsPermanent(t *testing.T) {
	err := classify("search", fmt.Errorf("StartTLS with ldap://x: %w", ldap.NewError(ldap.ErrorNetwork,
		errors.New("TLS handshake failed (tls: failed to verify certificate: x509: certificate signed by unknown authority)"))))
	requireType(t, err, TypeTLS, false)
	// A handshake cut by the network stays transient.
	err = classify("search", ldap.NewError(ldap.ErrorNetwork, errors.New("TLS handshake failed (read: connection reset by peer)")))
	requireType(t, err, TypeUnavailable, true)
}

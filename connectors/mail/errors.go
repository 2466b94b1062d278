package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/joinery/joinery/connectors"
)

// classify maps a failure of one step of the conversation to a
// *connectors.Error. Order matters: the context first (a deadline closes the
// connection, and the error that results only says "use of closed network
// connection"), then certificates, then the server's reply code, and last
// anything else, which is the network's fault.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return connectors.Transient(System, op, TypeUnavailable,
			fmt.Sprintf("mail server did not answer in time (%v)", ctxErr), err)
	}
	if isTLSRefusal(err) {
		// Retrying cannot make an untrusted certificate trusted.
		return connectors.Permanent(System, op, TypeTLS, "TLS with the mail server failed: "+tlsReason(err), err)
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		msg := fmt.Sprintf("server answered %d %s", tp.Code, oneLine(tp.Msg))
		switch {
		case tp.Code >= 400 && tp.Code < 500:
			return connectors.Transient(System, op, TypeTemporaryFailure, msg, nil)
		case tp.Code >= 500:
			return connectors.Permanent(System, op, TypeRejected, msg, nil)
		}
		// A 2xx/3xx where another was expected: a confused server or
		// proxy. Worth another try on a fresh connection.
		return connectors.Transient(System, op, TypeUnavailable, msg, nil)
	}
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return connectors.Transient(System, op, TypeUnavailable, "malformed reply from the mail server", err)
	}
	// Dial failures (connection refused, no route, DNS), resets, EOF and
	// I/O timeouts: the network's fault, retryable.
	return connectors.Transient(System, op, TypeUnavailable, "mail server unreachable", err)
}

// isTLSRefusal is true for a certificate the client does not trust and for
// a handshake the server refused (an alert): both are configuration, not
// transient faults.
func isTLSRefusal(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uerr  x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
		alert tls.AlertError
		rherr tls.RecordHeaderError
	)
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) ||
		errors.As(err, &cerr) || errors.As(err, &alert) || errors.As(err, &rherr)
}

func tlsReason(err error) string {
	var (
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &uerr):
		return "certificate signed by an unknown authority (set JOINERY_SMTP_CA_FILE)"
	case errors.As(err, &herr):
		return "certificate is not valid for the server's name"
	case errors.As(err, &cerr):
		return "certificate is invalid or expired"
	}
	return "handshake refused"
}

// oneLine keeps a server's (possibly multi-line) reply text readable in a
// single log or history line, and bounded.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

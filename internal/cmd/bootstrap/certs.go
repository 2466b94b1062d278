package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// certLifetime is how long the dev certificates last; the job renews them
// all when any is missing or within certRenewBefore of expiry.
const (
	certLifetime    = 397 * 24 * time.Hour
	certRenewBefore = 30 * 24 * time.Hour
)

// runCerts writes DIR/ca.pem (public, for every client) and per service
// DIR/<name>/{cert.pem,key.pem}, the directory and key owned by that
// service's uid with mode 0700/0400, so a service can read its own key and
// no other's. The CA's private key is never written: when a certificate has
// to change, all are issued again under a new CA, so nothing that can mint
// certificates lies in a volume.
func runCerts(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (the certs volume)")
	caOut := fs.String("ca-out", "", "also write the CA certificate here (a volume for clients, without keys)")
	services := forFlag{}
	fs.Var(services, "for", "service=uid[:gid] to issue a server certificate for (DNS name = service); repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || len(services) == 0 {
		return errors.New("certs: -dir and at least one -for are required")
	}
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	if !certsCurrent(*dir, names, time.Now()) {
		if err := issueAll(*dir, names, services, time.Now()); err != nil {
			return err
		}
	} else {
		fmt.Println("bootstrap: certificates current")
	}
	if *caOut == "" {
		return nil
	}
	ca, err := os.ReadFile(filepath.Join(*dir, "ca.pem"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*caOut), 0o755); err != nil {
		return err
	}
	return writeFile(*caOut, string(ca), 0o444)
}

// certsCurrent reports whether every service has a certificate from the
// current CA for its name that stays valid for certRenewBefore.
func certsCurrent(dir string, names []string, now time.Time) bool {
	ca, err := readCert(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, n := range names {
		c, err := readCert(filepath.Join(dir, n, "cert.pem"))
		if err != nil {
			return false
		}
		if _, err := os.Stat(filepath.Join(dir, n, "key.pem")); err != nil {
			return false
		}
		if _, err := c.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: now.Add(certRenewBefore)}); err != nil {
			return false
		}
	}
	return true
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

func issueAll(dir string, names []string, owners forFlag, now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Joinery deployment dev CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, n := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: n},
			DNSNames:     []string{n, "localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(certLifetime),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			// Temporal presents the same certificate to its own nodes
			// (internode TLS), so it is a client certificate as well.
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		sub := filepath.Join(dir, n)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(sub, "cert.pem"), "CERTIFICATE", der, 0o444); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(sub, "key.pem"), "PRIVATE KEY", keyDER, 0o400); err != nil {
			return err
		}
		id := owners[n]
		for _, p := range []string{sub, filepath.Join(sub, "cert.pem"), filepath.Join(sub, "key.pem")} {
			if err := os.Chown(p, id[0], id[1]); err != nil {
				return err
			}
		}
		if err := os.Chmod(sub, 0o700); err != nil {
			return err
		}
	}
	// The CA certificate last: its presence with current leaves is what
	// certsCurrent trusts, so a job killed halfway issues everything again.
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER, 0o444); err != nil {
		return err
	}
	fmt.Printf("bootstrap: issued certificates for %v\n", names)
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// writePEM replaces path atomically with mode.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".new"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

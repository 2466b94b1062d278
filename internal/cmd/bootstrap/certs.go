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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// certLifetime is how long the dev certificates last; the job renews them
// all when any is missing or within certRenewBefore of expiry.
const (
	certLifetime    = 397 * 24 * time.Hour
	certRenewBefore = 30 * 24 * time.Hour
)

// clientURIPrefix begins the URI SAN of every client certificate
// (spiffe://joinery.deployment/client/worker): an identity an authorizer
// or a log can read without parsing the subject, and one no server
// certificate carries.
const clientURIPrefix = "spiffe://joinery.deployment/client/"

// leafRole is what a certificate is for, which fixes its extended key
// usages exactly.
type leafRole int

const (
	// roleServer is a TLS server (Vault, slapd): serverAuth only, so a
	// stolen server key is no client identity anywhere.
	roleServer leafRole = iota
	// rolePeer is a server that is also a client of its own cluster:
	// Temporal presents its certificate to its own nodes (internode mTLS)
	// and, as the system worker, to its frontend.
	rolePeer
	// roleClient is a client of Temporal's frontend: clientAuth only,
	// under the client CA, which nothing but the frontend trusts.
	roleClient
)

func (r leafRole) usages() []x509.ExtKeyUsage {
	switch r {
	case roleServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case rolePeer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	default:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
}

// leafSpec is one certificate the job keeps: its name (DNS name of a
// server, CN of a client), role, owner and directory.
type leafSpec struct {
	name  string
	role  leafRole
	owner [2]int
	dir   string
}

// certName is what a certificate name may be: a DNS label, which is also a
// safe directory name (no "..", no "/").
var certName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// runCerts writes DIR/ca.pem (the server CA, public, for every client) and
// per server DIR/<name>/{cert.pem,key.pem}; with -client also
// DIR/client-ca.pem (the client CA, public, for Temporal's frontend) and
// per client CLIENTDIR/<name>/{cert.pem,key.pem}. Each directory and key is
// owned by its one service's uid with mode 0700/0400, so a service can read
// its own key and no other's (in compose each client directory is also a
// volume of its own, which only that client mounts).
//
// Two CAs, because the frontend must accept a client certificate that
// Temporal's internode listeners refuse: internode trusts the server CA,
// under which only the -peer certificate (Temporal's own) may act as a
// client, and the frontend trusts the client CA (plus the server CA, for
// Temporal's own system worker). So a worker's client key opens the
// frontend and nothing else, and Vault's or slapd's key opens nothing.
//
// Neither CA's private key is written: when a certificate has to change,
// all are issued again under new CAs, so nothing that can mint
// certificates lies in a volume.
func runCerts(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (the certs volume)")
	caOut := fs.String("ca-out", "", "also write the server CA certificate here (a volume for clients, without keys)")
	clientDir := fs.String("client-dir", "", "parent of the client certificates' directories, one per -client name (default DIR/clients)")
	servers, peers, clients := forFlag{}, forFlag{}, forFlag{}
	fs.Var(servers, "for", "service=uid[:gid] to issue a server certificate for (DNS name = service, serverAuth only); repeatable")
	fs.Var(peers, "peer", "service=uid[:gid]: a server certificate that also authenticates as a client of its own cluster (Temporal's internode mTLS); repeatable")
	fs.Var(clients, "client", "name=uid[:gid]: a client certificate (CN = name, clientAuth only) under the client CA, for Temporal's frontend; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("certs: unexpected arguments %v", fs.Args())
	}
	if *dir == "" || len(servers)+len(peers) == 0 {
		return errors.New("certs: -dir and at least one -for or -peer are required")
	}
	if *clientDir == "" {
		*clientDir = filepath.Join(*dir, "clients")
	}
	specs, err := leafSpecs(*dir, *clientDir, servers, peers, clients)
	if err != nil {
		return err
	}
	now := time.Now()
	if !certsCurrent(*dir, specs, now) {
		if err := issueAll(*dir, specs, now); err != nil {
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

// leafSpecs checks the names (each a DNS label, none in two roles, no two
// directories the same) before anything is written.
func leafSpecs(dir, clientDir string, servers, peers, clients forFlag) ([]leafSpec, error) {
	var specs []leafSpec
	seen := map[string]string{}
	dirs := map[string]string{}
	for _, set := range []struct {
		flag  string
		role  leafRole
		names forFlag
		dir   string
	}{{"-for", roleServer, servers, dir}, {"-peer", rolePeer, peers, dir}, {"-client", roleClient, clients, clientDir}} {
		names := make([]string, 0, len(set.names))
		for n := range set.names {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if !certName.MatchString(n) {
				return nil, fmt.Errorf("certs: %s %q: a name is a lower-case DNS label (letters, digits, inner hyphens)", set.flag, n)
			}
			if other, dup := seen[n]; dup {
				return nil, fmt.Errorf("certs: %q is given with both %s and %s: one certificate per name", n, other, set.flag)
			}
			seen[n] = set.flag
			d := filepath.Clean(filepath.Join(set.dir, n))
			if other, dup := dirs[d]; dup {
				return nil, fmt.Errorf("certs: %s for %q and %q is the same directory", d, other, n)
			}
			dirs[d] = n
			specs = append(specs, leafSpec{name: n, role: set.role, owner: set.names[n], dir: d})
		}
	}
	// A directory inside another's would put one service's key where the
	// other's owner can reach it (or lock a service out of its own).
	for d, n := range dirs {
		for _, base := range []string{filepath.Clean(dir), filepath.Clean(clientDir)} {
			if d == base {
				return nil, fmt.Errorf("certs: %q's directory %s is -dir or -client-dir itself", n, d)
			}
		}
		for e, m := range dirs {
			if d != e && strings.HasPrefix(e, d+string(filepath.Separator)) {
				return nil, fmt.Errorf("certs: %q's directory %s lies inside %q's %s", m, e, n, d)
			}
		}
	}
	return specs, nil
}

// certsCurrent reports whether every certificate exists, chains to its CA
// (the server CA for servers and peers, the client CA for clients), is for
// its name, carries exactly the usages of its role, has its key owned by
// its service and stays valid for certRenewBefore. Anything else (a new
// client, a changed uid, a certificate from before clients had their own
// CA) makes the job issue everything again.
func certsCurrent(dir string, specs []leafSpec, now time.Time) bool {
	pools := map[bool]*x509.CertPool{}
	for client, file := range map[bool]string{false: "ca.pem", true: "client-ca.pem"} {
		ca, err := readCert(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		// The client CA names the clients it was made for: a client
		// dropped from the list must lose its access, which only a new
		// client CA takes away (no CA key is kept to sign a revocation).
		// (DER sorts a SET's values by their encoding, hence the sort.)
		if client && !slices.Equal(slices.Sorted(slices.Values(ca.Subject.OrganizationalUnit)), clientNames(specs)) {
			return false
		}
		pools[client] = x509.NewCertPool()
		pools[client].AddCert(ca)
	}
	if pools[true] != nil && len(clientNames(specs)) == 0 {
		return false
	}
	for _, s := range specs {
		client := s.role == roleClient
		pool := pools[client]
		if pool == nil {
			return false
		}
		c, err := readCert(filepath.Join(s.dir, "cert.pem"))
		if err != nil {
			return false
		}
		st, err := os.Stat(filepath.Join(s.dir, "key.pem"))
		if err != nil {
			return false
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != s.owner[0] || int(sys.Gid) != s.owner[1]) {
			return false
		}
		if !slices.Equal(c.ExtKeyUsage, s.role.usages()) || c.Subject.CommonName != s.name {
			return false
		}
		opts := x509.VerifyOptions{Roots: pool, CurrentTime: now.Add(certRenewBefore), KeyUsages: s.role.usages()}
		if client {
			if len(c.URIs) != 1 || c.URIs[0].String() != clientURIPrefix+s.name || len(c.DNSNames) != 0 {
				return false
			}
		} else {
			opts.DNSName = s.name
		}
		if _, err := c.Verify(opts); err != nil {
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

// clientNames are the names of the client certificates, sorted.
func clientNames(specs []leafSpec) []string {
	var names []string
	for _, s := range specs {
		if s.role == roleClient {
			names = append(names, s.name)
		}
	}
	slices.Sort(names)
	return names
}

// newCA makes a CA certificate and its key, which stays in memory; ou
// records what it was made for.
func newCA(cn string, ou []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, OrganizationalUnit: ou},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, key, der, nil
}

func issueAll(dir string, specs []leafSpec, now time.Time) error {
	ca, caKey, caDER, err := newCA("Joinery deployment dev CA", nil, now)
	if err != nil {
		return err
	}
	var clientCA *x509.Certificate
	var clientCAKey *ecdsa.PrivateKey
	var clientCADER []byte
	for _, s := range specs {
		if s.role == roleClient && clientCA == nil {
			if clientCA, clientCAKey, clientCADER, err = newCA("Joinery deployment client CA", clientNames(specs), now); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var names []string
	for _, s := range specs {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: s.name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(certLifetime),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  s.role.usages(),
		}
		parent, parentKey := ca, caKey
		if s.role == roleClient {
			// A client is named by its URI alone: no DNS name or address, so
			// nothing could take it for a server's certificate.
			u, err := url.Parse(clientURIPrefix + s.name)
			if err != nil {
				return err
			}
			tmpl.URIs = []*url.URL{u}
			parent, parentKey = clientCA, clientCAKey
		} else {
			tmpl.DNSNames = []string{s.name, "localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(s.dir, "cert.pem"), "CERTIFICATE", der, 0o444); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(s.dir, "key.pem"), "PRIVATE KEY", keyDER, 0o400); err != nil {
			return err
		}
		for _, p := range []string{s.dir, filepath.Join(s.dir, "cert.pem"), filepath.Join(s.dir, "key.pem")} {
			if err := os.Chown(p, s.owner[0], s.owner[1]); err != nil {
				return err
			}
		}
		// Also when the directory existed (a volume's mount point is
		// created by the engine with its own mode).
		if err := os.Chmod(s.dir, 0o700); err != nil {
			return err
		}
		names = append(names, s.name)
	}
	// The CA certificates last, the server CA after the client CA: their
	// presence with current leaves is what certsCurrent trusts, so a job
	// killed halfway issues everything again.
	if clientCADER != nil {
		if err := writePEM(filepath.Join(dir, "client-ca.pem"), "CERTIFICATE", clientCADER, 0o444); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, "client-ca.pem")); err != nil && !errors.Is(err, os.ErrNotExist) {
		// No clients any more: their CA goes, so no old client
		// certificate chains to anything.
		return err
	}
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

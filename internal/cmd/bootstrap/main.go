// Command bootstrap is docker-compose's one-shot setup job: it generates
// the deployment's dev certificates and Joinery's own keys, and initialises
// Vault, each step idempotent so the job can run at every `docker compose
// up`.
//
//	bootstrap certs -dir /certs -for temporal=1000 -for vault=100 -for openldap=0
//	bootstrap keys  -codec /keys/codec.keys -decision-key /inbox/decision-ed25519.pem \
//	                -decision-public /keys/decision-public.keys -owner 65532
//	bootstrap vault -init-dir /init -worker-dir /vault-worker -sweeper-dir /vault-sweeper \
//	                -policy /app/policy/default.yaml
//
// The job is the only holder of Vault's init material (root token, unseal
// key): it writes them to -init-dir, a volume no other service mounts, and
// gives the worker only its AppRole RoleID and SecretID in -worker-dir, the
// wrapping-token sweeper only its own in -sweeper-dir.
//
// Who can reach it: nobody over the network; it runs once with the volumes
// compose gives it. Its adversary is a later, compromised service that
// shares a volume with it, which is why each output goes to the narrowest
// volume and owner that needs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/internal/decision"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bootstrap:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: bootstrap certs|keys|vault [flags] (see the package documentation)")
	}
	switch args[0] {
	case "certs":
		return runCerts(args[1:])
	case "keys":
		return runKeys(args[1:])
	case "vault":
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return runVault(ctx, args[1:])
	default:
		return fmt.Errorf("unknown step %q: want certs, keys or vault", args[0])
	}
}

// runKeys makes the payload codec key and the inbox's decision signing key
// once and never replaces them: a new codec key would make every sealed
// history unreadable, a new signing key would not verify decisions already
// signed (rotation adds keys instead; README, "Payload encryption").
func runKeys(args []string) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	codecFile := fs.String("codec", "", "payload codec key file (worker, starter, codec server)")
	decKey := fs.String("decision-key", "", "the inbox's Ed25519 signing key (starter only)")
	decPub := fs.String("decision-public", "", "public keys the worker accepts decisions from")
	owner := fs.Int("owner", -1, "uid (and gid) that owns the files: Joinery's images run as 65532")
	var dirs multiFlag
	fs.Var(&dirs, "mkdir", "a directory (volume) the owner writes to, e.g. the audit log's; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, d := range dirs {
		// A fresh named volume is root's; the worker (65532) appends the
		// audit log and hands over tokens there.
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if *owner >= 0 {
			if err := os.Chown(d, *owner, *owner); err != nil {
				return err
			}
		}
	}
	if *codecFile == "" || *decKey == "" || *decPub == "" {
		return errors.New("keys: -codec, -decision-key and -decision-public are required")
	}
	if filepath.Dir(*decKey) == filepath.Dir(*decPub) || filepath.Dir(*decKey) == filepath.Dir(*codecFile) {
		// The private key must sit in a volume only the inbox mounts.
		return errors.New("keys: -decision-key must be in a directory of its own")
	}
	if _, err := codec.EnsureKeyFile(*codecFile); err != nil {
		return fmt.Errorf("codec key: %w", err)
	}
	if err := decision.EnsureKeyFiles(*decKey, *decPub); err != nil {
		return fmt.Errorf("decision key: %w", err)
	}
	if *owner >= 0 {
		for _, f := range []string{*codecFile, *decKey, *decPub} {
			if err := os.Chown(f, *owner, *owner); err != nil {
				return err
			}
			if err := os.Chown(filepath.Dir(f), *owner, *owner); err != nil {
				return err
			}
		}
	}
	for _, f := range []string{*codecFile, *decKey} {
		if err := os.Chmod(f, 0o400); err != nil {
			return err
		}
	}
	fmt.Println("bootstrap: keys in place")
	return nil
}

// multiFlag collects a repeated flag's values.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

// Set adds one value.
func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// forFlag collects -for name=uid[:gid] pairs.
type forFlag map[string][2]int

func (f forFlag) String() string { return fmt.Sprint(map[string][2]int(f)) }

func (f forFlag) Set(v string) error {
	name, ids, ok := strings.Cut(v, "=")
	if !ok || name == "" || strings.ContainsAny(name, "/\\.") {
		return fmt.Errorf("want name=uid[:gid], got %q", v)
	}
	u, g, hasG := strings.Cut(ids, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		return fmt.Errorf("%s: uid: %w", name, err)
	}
	gid := uid
	if hasG {
		if gid, err = strconv.Atoi(g); err != nil {
			return fmt.Errorf("%s: gid: %w", name, err)
		}
	}
	f[name] = [2]int{uid, gid}
	return nil
}

// Command slapdinit configures and starts OpenLDAP slapd the way the dev
// stack does (internal/stack: one generator for schema, joineryManaged
// marker, access rules and seed), for the openldap image of this
// repository's Dockerfile. It writes slapd.conf and the seed into -dir,
// loads the seed into an empty database, and with -exec replaces itself with
// slapd in the foreground.
//
// Secrets come from the environment (or a file named by the _FILE
// variant), never from flags, so they do not show in the process list:
//
//	SLAPD_ROOT_PASSWORD     rootdn (cn=admin) password, at least 16 characters
//	SLAPD_SERVICE_PASSWORD  the worker's service account's password
//	SLAPD_INBOX_PASSWORD    the approval inbox's read-only account's
//	                        password (cn=joinery-inbox,ou=system); unset,
//	                        that account is locked
//
// Other settings (flags override):
//
//	SLAPD_DIR          config and database directory (/var/lib/joinery-slapd)
//	SLAPD_REPO         directory holding testdata/ldap and testdata/policy (/app)
//	SLAPD_URLS         listeners (ldap:/// ldaps:///)
//	SLAPD_TLS_CA, SLAPD_TLS_CERT, SLAPD_TLS_KEY  PEM files; all or none
//	SLAPD_DEMO_PEOPLE  true keeps the seed people's dev passwords (false)
//	SLAPD_USER         user (and group of the same name) slapd runs as
//
// Who can reach it: whoever starts the container (the operator). It reads
// only the files named above and writes only below -dir.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/joinery/joinery/internal/stack"
)

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "slapdinit:", err)
		os.Exit(1)
	}
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}

// secret reads name from the environment or from the file ${name}_FILE.
func secret(getenv func(string) string, name string) (string, error) {
	v, err := optionalSecret(getenv, name)
	if err == nil && v == "" {
		return "", fmt.Errorf("%s (or %s_FILE) is required", name, name)
	}
	return v, err
}

// optionalSecret is secret for a value that may be absent ("" then).
func optionalSecret(getenv func(string) string, name string) (string, error) {
	v, file := getenv(name), getenv(name+"_FILE")
	if v != "" && file != "" {
		return "", fmt.Errorf("set %s or %s_FILE, not both", name, name)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return v, nil
}

func run(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("slapdinit", flag.ContinueOnError)
	dir := fs.String("dir", envOr(getenv, "SLAPD_DIR", "/var/lib/joinery-slapd"), "config and database directory")
	repo := fs.String("repo", envOr(getenv, "SLAPD_REPO", "/app"), "directory holding testdata/ldap and testdata/policy")
	urls := fs.String("urls", envOr(getenv, "SLAPD_URLS", "ldap:/// ldaps:///"), "slapd listeners (-h)")
	runAs := fs.String("user", getenv("SLAPD_USER"), "user and group slapd runs as (empty: unchanged)")
	execSlapd := fs.Bool("exec", false, "replace this process with slapd in the foreground")
	if err := fs.Parse(args); err != nil {
		return err
	}
	demo, err := strconv.ParseBool(envOr(getenv, "SLAPD_DEMO_PEOPLE", "false"))
	if err != nil {
		return fmt.Errorf("SLAPD_DEMO_PEOPLE: %w", err)
	}
	img := stack.SlapdImage{RepoDir: *repo, Dir: *dir, DemoPeople: demo}
	if img.RootPassword, err = secret(getenv, "SLAPD_ROOT_PASSWORD"); err != nil {
		return err
	}
	if img.ServicePassword, err = secret(getenv, "SLAPD_SERVICE_PASSWORD"); err != nil {
		return err
	}
	// Optional: a directory for a deployment without the approval inbox
	// keeps that account locked rather than with a password nobody set.
	if img.InboxPassword, err = optionalSecret(getenv, "SLAPD_INBOX_PASSWORD"); err != nil {
		return err
	}
	ca, cert, key := getenv("SLAPD_TLS_CA"), getenv("SLAPD_TLS_CERT"), getenv("SLAPD_TLS_KEY")
	switch {
	case ca != "" && cert != "" && key != "":
		img.TLS = &stack.TLSFiles{CA: ca, Cert: cert, Key: key}
	case ca != "" || cert != "" || key != "":
		return fmt.Errorf("SLAPD_TLS_CA, SLAPD_TLS_CERT and SLAPD_TLS_KEY: all or none")
	case strings.Contains(*urls, "ldaps://"):
		return fmt.Errorf("ldaps:// in the listeners needs SLAPD_TLS_CA, SLAPD_TLS_CERT and SLAPD_TLS_KEY")
	}
	if err := img.Write(context.Background()); err != nil {
		return err
	}
	slapdArgs := []string{"slapd", "-f", filepath.Join(*dir, "slapd.conf"), "-h", *urls, "-d", "0"}
	if *runAs != "" {
		u, err := user.Lookup(*runAs)
		if err != nil {
			return err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// slapadd ran as this process's user; slapd opens the database
		// after dropping to runAs.
		if err := chownTree(*dir, uid, gid); err != nil {
			return err
		}
		slapdArgs = append(slapdArgs, "-u", *runAs, "-g", *runAs)
	}
	fmt.Fprintf(os.Stderr, "slapdinit: configured %s (demo people: %v, TLS: %v, inbox account: %s)\n", *dir, demo, img.TLS != nil,
		map[bool]string{true: "enabled", false: "locked (no SLAPD_INBOX_PASSWORD)"}[img.InboxPassword != ""])
	if !*execSlapd {
		return nil
	}
	// slapd needs none of the secrets; do not leave them in its environment.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLAPD_ROOT_PASSWORD") && !strings.HasPrefix(kv, "SLAPD_SERVICE_PASSWORD") &&
			!strings.HasPrefix(kv, "SLAPD_INBOX_PASSWORD") {
			env = append(env, kv)
		}
	}
	return syscall.Exec(stack.SlapdBinary(), slapdArgs, env)
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

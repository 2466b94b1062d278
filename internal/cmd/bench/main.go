// Command bench measures Joinery against the real servers, side by side
// with a bare baseline workflow, on the dev server and on the loopback
// Temporal cluster (`make bench`). It is a program, not a timed test: it
// provisions real joiners (reference HRIS, LDAP, Vault, Mailpit) through
// bin/worker, and prints per backend
//
//   - sequential: approval → provisioned latency p50/p99, one joiner at a time;
//   - burst: N joiners waiting, all approved at once; throughput and p50/p99;
//   - history events per workflow;
//   - worker RSS (VmRSS and peak VmHWM from /proc/PID/status of the worker
//     process: bin/worker for joiners, `bench worker-bare` for the baseline);
//   - with -waiting N: RSS with N workflows waiting for approval, and how much
//     the server's database grew for them;
//
// and the same for the bare workflow (one signal, then -activities no-op
// activities in sequence), with the ratio joiner/bare.
//
//	bench [-backends dev,cluster] [-sequential 20] [-burst 100] [-waiting 0] [-activities 12]
//
// Both workloads run in the same process against the same server one after
// the other, on fresh task queues, so their figures compare. The dev stack
// must be up (make stack); the cluster is brought up or reused.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/joinery/joinery/internal/stack"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker-bare" {
		if err := runBareWorker(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.backends, "backends", "dev,cluster", "comma-separated backends to measure: dev (the dev stack's Temporal dev server), cluster (make cluster)")
	flag.IntVar(&o.sequential, "sequential", 20, "joiners (and bare workflows) approved one at a time")
	flag.IntVar(&o.burst, "burst", 100, "joiners (and bare workflows) approved all at once")
	flag.IntVar(&o.waiting, "waiting", 0, "workflows left waiting for approval while the worker's RSS and the database growth are read (then terminated)")
	flag.IntVar(&o.activities, "activities", 12, "no-op activities of the bare baseline workflow")
	flag.IntVar(&o.concurrency, "concurrency", 16, "how many workflows are started (and readied) at once before a burst")
	flag.StringVar(&o.devAddress, "dev-address", "", "Temporal address of the dev backend (default: the dev stack's); for measuring a private dev server")
	flag.StringVar(&o.devDB, "dev-db", "", "SQLite file of the dev backend, for database growth (default: the dev stack's)")
	flag.StringVar(&o.workerBin, "worker", "", "the joiner worker binary (default: bin/worker of the checkout)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := runBench(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the bench's flags.
type options struct {
	backends                               string
	sequential, burst, waiting, activities int
	concurrency                            int
	devAddress, devDB                      string
	workerBin                              string
	timeout                                time.Duration
}

// validate refuses sizes that cannot be measured, before anything starts.
func (o options) validate() error {
	for _, b := range o.backendList() {
		if b != "dev" && b != "cluster" {
			return fmt.Errorf("-backends: unknown backend %q (want dev, cluster)", b)
		}
	}
	if len(o.backendList()) == 0 {
		return fmt.Errorf("-backends: none given")
	}
	switch {
	case o.sequential < 1 && o.burst < 1:
		return fmt.Errorf("-sequential and -burst: at least one must be positive")
	case o.sequential < 0 || o.burst < 0 || o.waiting < 0:
		return fmt.Errorf("sizes must not be negative")
	case o.burst > 100000 || o.waiting > 100000 || o.sequential > 100000:
		return fmt.Errorf("sizes above 100000 are refused (the dev directory and HRIS hold every joiner)")
	case o.activities < 1 || o.activities > 1000:
		return fmt.Errorf("-activities: 1 to 1000")
	case o.concurrency < 1 || o.concurrency > 256:
		return fmt.Errorf("-concurrency: 1 to 256")
	}
	// The bench signs approvals with the dev stack's inbox key and floods
	// the server it is given: it is for loopback servers only, never a
	// shared or production Temporal reached by a mistyped address.
	if o.devAddress != "" {
		host, _, err := net.SplitHostPort(o.devAddress)
		if err != nil {
			return fmt.Errorf("-dev-address %q: %w", o.devAddress, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("-dev-address %q: only a loopback address may be benchmarked", o.devAddress)
		}
	}
	return nil
}

func (o options) backendList() []string {
	var out []string
	for _, b := range strings.Split(o.backends, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func runBench(ctx context.Context, o options, out io.Writer) error {
	repo, err := stack.FindRepoDir()
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The dev stack must already run (make bench starts it): the bench
	// measures servers, it does not manage them.
	scfg := stack.DefaultConfig(repo)
	for name, err := range stack.Status(ctx, scfg) {
		if err != nil && !(name == "temporal" && o.devAddress != "") {
			return fmt.Errorf("dev stack: %s does not answer (run make stack): %w", name, err)
		}
	}
	ep := scfg.Endpoints()
	scratch, err := os.MkdirTemp("", "joinery-bench-")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: worker logs and scratch files in %s\n", scratch)
	var reports []report
	for _, name := range o.backendList() {
		b := backendSpec{name: name, ep: ep, repo: repo, scratch: filepath.Join(scratch, name), workerBin: o.workerBin}
		if b.workerBin == "" {
			b.workerBin = filepath.Join(repo, "bin", "worker")
		}
		switch name {
		case "dev":
			b.address = ep.TemporalAddress
			if o.devAddress != "" {
				b.address = o.devAddress
			}
			db := filepath.Join(ep.StateDir, "temporal", "temporal.db")
			if o.devDB != "" {
				db = o.devDB
			}
			b.dbBytes = func(context.Context) (int64, error) { return sqliteBytes(db) }
		case "cluster":
			k := stack.DefaultCluster(repo)
			addr, err := stack.ClusterUp(ctx, k)
			if err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			b.address = addr
			b.dbBytes = k.DatabaseBytes
		}
		fmt.Fprintf(out, "bench: %s (Temporal %s): sequential %d, burst %d, waiting %d\n", name, b.address, o.sequential, o.burst, o.waiting)
		r, err := measureBackend(ctx, o, b, quiet, out)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		reports = append(reports, r...)
	}
	printTable(out, o, reports)
	return nil
}

// sqliteBytes is the dev server's database size: the file and its WAL.
func sqliteBytes(db string) (int64, error) {
	var n int64
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(f)
		if err == nil {
			n += fi.Size()
		} else if !os.IsNotExist(err) {
			return 0, err
		}
	}
	return n, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
)

// backendSpec is one Temporal server to measure; everything else (Vault,
// LDAP, HRIS, Mailpit) is the dev stack's.
type backendSpec struct {
	name    string
	address string
	ep      stack.Endpoints
	repo    string
	scratch string
	dbBytes func(context.Context) (int64, error)
	// workerBin is the joiner worker (bin/worker).
	workerBin string
}

// report is what one workload measured on one backend.
type report struct {
	backend, workload string
	sequential        []time.Duration
	burst             []time.Duration
	burstWall         time.Duration
	events            []int64
	rssKB, hwmKB      int64 // after the sequential and burst phases
	waitingRSSKB      int64 // with -waiting workflows waiting
	waitingDBBytes    int64 // database growth for them
	waitingDBErr      error
}

// env is the JOINERY_* environment of the backend's processes, for task
// queue tq: the dev stack's, with the Temporal address of the backend and
// the audit log and dev inbox in the bench's scratch directory (so the
// shared .state files do not fill up).
func (b backendSpec) env(tq string) map[string]string {
	m := map[string]string{}
	for _, kv := range stack.Env(b.ep) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	m["JOINERY_TEMPORAL_ADDRESS"] = b.address
	m["JOINERY_TASK_QUEUE"] = tq
	m["JOINERY_POLICY_FILE"] = filepath.Join(b.repo, "testdata", "policy", "default.yaml")
	m["JOINERY_AUDIT_LOG"] = filepath.Join(b.scratch, tq, "audit.jsonl")
	m["JOINERY_INBOX_DIR"] = filepath.Join(b.scratch, tq, "mail")
	m["JOINERY_LOG_LEVEL"] = "warn"
	return m
}

func (b backendSpec) config(tq string) (config.Config, error) {
	m := b.env(tq)
	return config.Load(func(k string) string { return m[k] })
}

// workerProc is a worker process the bench started; stop ends exactly it.
type workerProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startWorker(ctx context.Context, c client.Client, b backendSpec, tq, logName string, bin string, args ...string) (*workerProc, error) {
	if err := os.MkdirAll(filepath.Join(b.scratch, tq), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(b.scratch, logName+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = b.repo
	cmd.Env = os.Environ()
	for k, v := range b.env(tq) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	w := &workerProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.exited) }()
	// Ready once it polls both the workflow and the activity side of its
	// queue: a burst must not measure the worker's start-up.
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		for {
			d, err := c.DescribeTaskQueue(ctx, tq, typ)
			if err == nil && len(d.GetPollers()) > 0 {
				break
			}
			select {
			case <-w.exited:
				return nil, fmt.Errorf("%s exited at start (log %s)", bin, logf.Name())
			case <-ctx.Done():
				w.stop()
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return w, nil
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

func (w *workerProc) stop() {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(20 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}

// rss reads VmRSS and VmHWM (peak) of pid, in kB.
func rss(pid int) (cur, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = n
		case "VmHWM:":
			peak = n
		}
	}
	return cur, peak
}

func measureBackend(ctx context.Context, o options, b backendSpec, logger *slog.Logger, out io.Writer) ([]report, error) {
	tag := strconv.FormatInt(time.Now().Unix()%1e6, 36) + strconv.Itoa(rand.IntN(1000))
	jq, bq := "bench-joiner-"+tag, "bench-bare-"+tag
	jcfg, err := b.config(jq)
	if err != nil {
		return nil, err
	}
	c, err := run.Dial(ctx, jcfg, logger)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	acts, err := run.Activities(ctx, jcfg, logger)
	if err != nil {
		return nil, fmt.Errorf("connectors for cleanup: %w", err)
	}
	signer, err := decision.LoadFileSigner(jcfg.DecisionKeyFile)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	loads := []struct {
		w    workload
		tq   string
		bin  string
		args []string
	}{
		{&joinerLoad{c: c, cfg: jcfg, ep: b.ep, signer: signer, acts: acts, groups: acts.Policy.(*policy.Policy).Groups, runTag: tag}, jq, b.workerBin, nil},
		{&bareLoad{c: c, taskQueue: bq, activities: o.activities, runTag: tag}, bq, self, []string{"worker-bare"}},
	}
	var reports []report
	for _, l := range loads {
		w, err := startWorker(ctx, c, b, l.tq, l.w.name()[:4]+"-worker", l.bin, l.args...)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "bench: %s: %s worker pid %d on %s\n", b.name, l.w.name(), w.pid(), l.tq)
		r, err := measureLoad(ctx, o, b, c, l.w, w, out)
		w.stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.w.name(), err)
		}
		reports = append(reports, r)
	}
	return reports, nil
}

func measureLoad(ctx context.Context, o options, b backendSpec, c client.Client, wl workload, w *workerProc, out io.Writer) (report, error) {
	r := report{backend: b.name, workload: wl.name()}
	var all []item
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		wl.cleanup(cctx, all)
	}()
	eventsOf := func(its []item) error {
		for _, it := range its {
			n, err := historyLength(ctx, c, it.workflowID)
			if err != nil {
				return err
			}
			r.events = append(r.events, n)
		}
		return nil
	}
	// Sequential: one at a time, approval to closed.
	for i := 0; i < o.sequential; i++ {
		it, err := wl.prepare(ctx, i)
		all = append(all, it)
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		if err := wl.approve(ctx, it); err != nil {
			return r, err
		}
		if err := wl.wait(ctx, it); err != nil {
			return r, err
		}
		r.sequential = append(r.sequential, time.Since(t0))
	}
	if err := eventsOf(all); err != nil {
		return r, err
	}
	fmt.Fprintf(out, "bench: %s %s: sequential done (p50 %s)\n", b.name, wl.name(), pct(r.sequential, 50))
	// Burst: all waiting first (not timed), then every approval at once.
	if o.burst > 0 {
		its, err := prepareMany(ctx, wl, o.burst, o.concurrency, 1_000_000)
		all = append(all, its...)
		if err != nil {
			return r, err
		}
		lat := make([]time.Duration, len(its))
		errs := make([]error, len(its))
		var wg sync.WaitGroup
		start := time.Now()
		var mu sync.Mutex
		var last time.Time
		for i, it := range its {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				if errs[i] = approveRetrying(ctx, wl, it); errs[i] != nil {
					return
				}
				errs[i] = wl.wait(ctx, it)
				done := time.Now()
				lat[i] = done.Sub(t0)
				mu.Lock()
				if done.After(last) {
					last = done
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return r, fmt.Errorf("burst: %w", err)
			}
		}
		r.burst, r.burstWall = lat, last.Sub(start)
		if err := eventsOf(its); err != nil {
			return r, err
		}
		fmt.Fprintf(out, "bench: %s %s: burst of %d done in %s\n", b.name, wl.name(), len(its), r.burstWall.Round(time.Millisecond))
	}
	r.rssKB, r.hwmKB = rss(w.pid())
	// Waiting: N workflows parked at their approval; what they cost the
	// worker (its cache holds them) and the database.
	if o.waiting > 0 {
		before, err := b.dbBytes(ctx)
		its, perr := prepareMany(ctx, wl, o.waiting, o.concurrency, 2_000_000)
		all = append(all, its...)
		if perr != nil {
			return r, perr
		}
		r.waitingRSSKB, _ = rss(w.pid())
		after, err2 := b.dbBytes(ctx)
		if err == nil {
			err = err2
		}
		r.waitingDBBytes, r.waitingDBErr = after-before, err
		fmt.Fprintf(out, "bench: %s %s: %d waiting\n", b.name, wl.name(), len(its))
	}
	return r, nil
}

// prepareMany readies n workflows, conc at a time.
func prepareMany(ctx context.Context, wl workload, n, conc, seqBase int) ([]item, error) {
	its := make([]item, n)
	errs := make([]error, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			its[i], errs[i] = wl.prepare(ctx, seqBase+i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return its, err
		}
	}
	return its, nil
}

// pct is the nearest-rank percentile p of ds (0 when empty).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p/100+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(s) {
		k = len(s) - 1
	}
	return s[k]
}

func meanInt(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t int64
	for _, x := range xs {
		t += x
	}
	return float64(t) / float64(len(xs))
}

func rangeInt(xs []int64) string {
	if len(xs) == 0 {
		return "-"
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo == hi {
		return strconv.FormatInt(lo, 10)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func throughput(r report) float64 {
	if r.burstWall <= 0 {
		return 0
	}
	return float64(len(r.burst)) / r.burstWall.Seconds()
}

// printTable prints one block per backend: joiner, bare and the ratio.
func printTable(out io.Writer, o options, reports []report) {
	host, _ := os.Hostname()
	fmt.Fprintf(out, "\nmachine: %s, %d CPUs (%s), %s; sizes: sequential %d, burst %d, waiting %d, bare activities %d\n",
		host, numCPU(), cpuModel(), memTotal(), o.sequential, o.burst, o.waiting, o.activities)
	fmt.Fprintf(out, "| backend | workload | seq p50 | seq p99 | burst /s | burst p50 | burst p99 | events | worker RSS (peak) | waiting RSS | waiting DB growth |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	byBackend := map[string][]report{}
	var order []string
	for _, r := range reports {
		if _, ok := byBackend[r.backend]; !ok {
			order = append(order, r.backend)
		}
		byBackend[r.backend] = append(byBackend[r.backend], r)
	}
	for _, b := range order {
		rs := byBackend[b]
		for _, r := range rs {
			fmt.Fprintf(out, "| %s | %s | %s | %s | %.2f | %s | %s | %s | %s | %s | %s |\n", r.backend, r.workload,
				ms(pct(r.sequential, 50)), ms(pct(r.sequential, 99)), throughput(r), ms(pct(r.burst, 50)), ms(pct(r.burst, 99)),
				rangeInt(r.events), mb(r.rssKB)+" ("+mb(r.hwmKB)+")", waitingRSS(o, r), waitingDB(o, r))
		}
		if len(rs) == 2 {
			j, bare := rs[0], rs[1]
			fmt.Fprintf(out, "| %s | ratio joiner/bare | %s | %s | %s | %s | %s | %s | %s | %s | |\n", b,
				ratio(float64(pct(j.sequential, 50)), float64(pct(bare.sequential, 50))),
				ratio(float64(pct(j.sequential, 99)), float64(pct(bare.sequential, 99))),
				ratio(throughput(j), throughput(bare)),
				ratio(float64(pct(j.burst, 50)), float64(pct(bare.burst, 50))),
				ratio(float64(pct(j.burst, 99)), float64(pct(bare.burst, 99))),
				ratio(meanInt(j.events), meanInt(bare.events)),
				ratio(float64(j.hwmKB), float64(bare.hwmKB)),
				ratioIf(o.waiting > 0, float64(j.waitingRSSKB), float64(bare.waitingRSSKB)))
		}
	}
}

func waitingRSS(o options, r report) string {
	if o.waiting == 0 {
		return "-"
	}
	return mb(r.waitingRSSKB)
}

func waitingDB(o options, r report) string {
	if o.waiting == 0 {
		return "-"
	}
	if r.waitingDBErr != nil {
		return "error: " + r.waitingDBErr.Error()
	}
	return fmt.Sprintf("%.1f MB (%.1f kB each)", float64(r.waitingDBBytes)/1e6, float64(r.waitingDBBytes)/1e3/float64(o.waiting))
}

func mb(kb int64) string {
	if kb < 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f MB", float64(kb)/1024)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func ratioIf(ok bool, a, b float64) string {
	if !ok {
		return "-"
	}
	return ratio(a, b)
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "\nprocessor") + boolInt(strings.HasPrefix(string(data), "processor"))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return fmt.Sprintf("%.0f GB RAM", float64(kb)/1024/1024)
		}
	}
	return "? RAM"
}

// approveRetrying sends an approval, again when the server did not answer in
// time: a thousand signals at once can outlast the client's per-call
// deadline on a small cluster. A signal that did land twice is harmless —
// the joiner refuses the second (a replayed nonce) and the bare workflow
// reads one — and the latency still counts from the first send.
func approveRetrying(ctx context.Context, wl workload, it item) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = wl.approve(ctx, it); err == nil || ctx.Err() != nil {
			return err
		}
		if attempt > 0 && errors.Is(err, run.ErrNoRunningJoiner) {
			return nil // the earlier send landed, and the joiner has closed
		}
		var dl *serviceerror.DeadlineExceeded
		if !errors.As(err, &dl) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return err
}

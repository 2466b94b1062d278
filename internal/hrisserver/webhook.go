package hrisserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/joinery/joinery/connectors/hris"
)

// webhookTimestampLayout is the event timestamp form of BambooHR payloads.
const webhookTimestampLayout = "2006-01-02T15:04:05-0700"

// webhookEvent is one element of the payload's "employees" array.
type webhookEvent struct {
	ID            string            `json:"id"`
	Timestamp     string            `json:"timestamp"`
	Action        string            `json:"action"`
	ChangedFields []string          `json:"changedFields"`
	Fields        map[string]string `json:"fields"`
}

type webhookPayload struct {
	Employees []webhookEvent `json:"employees"`
}

// delivery is one payload for one target.
type delivery struct {
	target string
	body   []byte
	// what describes the delivery in logs (action and employee id).
	what string
	// attempt counts from 1.
	attempt int
}

// deliverer posts signed webhooks from a bounded queue on a few goroutines,
// so that a slow or dead receiver never blocks the API.
type deliverer struct {
	secret   []byte
	log      *slog.Logger
	client   *http.Client
	attempts int
	backoff  time.Duration

	mu      sync.Mutex
	closed  bool
	queue   chan delivery
	primary string
	subs    map[string]string // subscriber id -> URL
	nextSub int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	deliveryWorkers   = 4
	deliveryQueueSize = 1024
	deliveryTimeout   = 5 * time.Second
	closeGrace        = 3 * time.Second
)

func newDeliverer(secret []byte, primary string, attempts int, backoff time.Duration, log *slog.Logger) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{
		secret:   secret,
		log:      log,
		client:   &http.Client{Timeout: deliveryTimeout},
		attempts: attempts,
		backoff:  backoff,
		queue:    make(chan delivery, deliveryQueueSize),
		primary:  primary,
		subs:     map[string]string{},
		ctx:      ctx,
		cancel:   cancel,
	}
	for range deliveryWorkers {
		d.wg.Add(1)
		go d.work()
	}
	return d
}

// checkTargetURL accepts absolute http(s) URLs ("" clears a target).
func checkTargetURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook url must be an absolute http or https URL")
	}
	if u.User != nil {
		return fmt.Errorf("webhook url must not carry credentials")
	}
	return nil
}

func (d *deliverer) setPrimary(u string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.primary = u
}

func (d *deliverer) addSubscriber(u string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextSub++
	id := "s" + strconv.Itoa(d.nextSub)
	d.subs[id] = u
	return id
}

func (d *deliverer) removeSubscriber(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.subs, id)
}

// targets returns the primary URL and the subscribers (sorted by id).
func (d *deliverer) targets() (string, map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.primary, maps.Clone(d.subs)
}

// publish queues ev for every target without blocking. A full queue drops
// the delivery and logs it: the API answer must never wait on a receiver.
func (d *deliverer) publish(ev webhookEvent) {
	body, err := json.Marshal(webhookPayload{Employees: []webhookEvent{ev}})
	if err != nil {
		d.log.Error("webhook encode failed", "employee_id", ev.ID, "err", err)
		return
	}
	what := ev.Action + " " + ev.ID
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	targets := make([]string, 0, len(d.subs)+1)
	if d.primary != "" {
		targets = append(targets, d.primary)
	}
	for _, u := range d.subs {
		targets = append(targets, u)
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	for _, t := range targets {
		d.enqueueLocked(delivery{target: t, body: body, what: what, attempt: 1})
	}
}

// enqueueLocked queues job without blocking; d.mu must be held. A full queue
// drops the delivery and logs it.
func (d *deliverer) enqueueLocked(job delivery) {
	if d.closed {
		d.log.Warn("webhook dropped: server shutting down", "event", job.what, "target", redactURL(job.target), "attempt", job.attempt)
		return
	}
	select {
	case d.queue <- job:
	default:
		d.log.Error("webhook queue full; delivery dropped", "event", job.what, "target", redactURL(job.target))
	}
}

func (d *deliverer) work() {
	defer d.wg.Done()
	for job := range d.queue {
		d.deliver(job)
	}
}

// deliver makes one attempt of job, signed afresh, and on a network error,
// 408, 429 or 5xx schedules the next attempt after an exponential backoff.
// The wait happens on a timer, not in the worker, so that a dead receiver
// never delays deliveries to the others.
func (d *deliverer) deliver(job delivery) {
	status, err := d.post(job)
	target := redactURL(job.target)
	if err == nil && status >= 200 && status <= 299 {
		d.log.Info("webhook delivered", "event", job.what, "target", target, "status", status, "attempt", job.attempt)
		return
	}
	retryable := err != nil || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
	if !retryable {
		d.log.Warn("webhook rejected by receiver; not retrying", "event", job.what, "target", target, "status", status, "attempt", job.attempt)
		return
	}
	if job.attempt >= d.attempts || d.ctx.Err() != nil {
		d.log.Error("webhook delivery failed", "event", job.what, "target", target, "status", status, "attempts", job.attempt, "err", errString(err))
		return
	}
	wait := d.backoff << (job.attempt - 1)
	d.log.Warn("webhook attempt failed; retrying", "event", job.what, "target", target, "status", status, "attempt", job.attempt, "retry_in", wait.String(), "err", errString(err))
	job.attempt++
	time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.enqueueLocked(job)
	})
}

// redactURL drops the query and credentials of a target URL before it is
// logged: webhook URLs sometimes carry a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (d *deliverer) post(job delivery) (int, error) {
	sig, ts := hris.Sign(d.secret, job.body, time.Now())
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, job.target, bytes.NewReader(job.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "refhris-webhooks/1.0")
	req.Header.Set(hris.SignatureHeader, sig)
	req.Header.Set(hris.TimestampHeader, ts)
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL)
		}
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// close stops accepting events and retries, lets queued deliveries finish
// for a short grace period, then cancels whatever is still in flight. Retries
// still waiting on their backoff timer are dropped (and logged).
func (d *deliverer) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.queue)
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		d.log.Warn("webhook deliveries still pending at shutdown; cancelling")
		d.cancel()
		<-done
	}
	d.cancel()
}

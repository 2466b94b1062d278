// Command demo is `make run`: it brings up the dev stack, starts a worker
// and `starter serve` (the HR intake and the approval inbox), creates a
// sample new hire in the reference HRIS and follows the joiner end to end —
// plan, approval by the manager signed in to the inbox, username fallback,
// account, groups, credential, write-back — then checks each server
// directly. On the way it shows that an approval signal carrying only a
// name is refused. It keeps everything running until Ctrl-C, so that the
// last joiner can be approved in a browser.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/audit"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// devPasswords are the seed people's dev passwords (testdata/ldap/seed.ldif):
// the demo signs in to the inbox as them, as a person would.
var devPasswords = map[string]string{
	"ada.lovelace": "dev-ada-pass",
	"grace.hopper": "dev-grace-pass",
	"alan.turing":  "dev-alan-pass",
}

func demo(ctx context.Context) error {
	repo, err := stack.FindRepoDir()
	if err != nil {
		return err
	}
	scfg := stack.DefaultConfig(repo)
	wasUp := true
	for _, e := range stack.Status(ctx, scfg) {
		if e != nil {
			wasUp = false
		}
	}
	say("starting the dev stack (Temporal + UI, Vault, slapd, reference HRIS, Mailpit)...")
	scfg.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
			return slog.Attr{}
		}
		return a
	}}))
	ep, err := stack.Up(ctx, scfg)
	if err != nil {
		return err
	}
	say("stack up; server logs in %s", filepath.Join(ep.StateDir, "logs"))

	env := stack.Env(ep)
	cfg, err := e2e.Config(ep, repo)
	if err != nil {
		return err
	}

	worker, err := startProcess(ep, repo, env, "worker", "worker", filepath.Join(ep.BinDir, "worker"))
	if err != nil {
		return err
	}
	// The sweeper: the reconciler's wrapping-token sweep, a separate
	// process with its own Vault identity (activities/sweep.go).
	sweeper, err := startProcess(ep, repo, stack.SweeperEnv(ep), "sweeper", "sweeper", filepath.Join(ep.BinDir, "worker"))
	if err != nil {
		worker.stop()
		return err
	}
	defer func() {
		sweeper.stop()
		worker.stop()
		if !wasUp {
			say("stopping the dev stack it started")
			_ = stack.Down(context.Background(), scfg)
		} else {
			say("the dev stack was already up before `make run`; leaving it running (make stack-down stops it)")
		}
	}()
	// The front doors run for the whole demo: the intake takes the HRIS's
	// webhooks, and the inbox is where every approval below is made.
	serve, err := startServe(ctx, ep, repo, env, cfg)
	if err != nil {
		return err
	}
	defer serve.stop()
	ib := inboxAPI{base: cfg.InboxURL, hc: &http.Client{Timeout: 90 * time.Second}}

	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer c.Close()

	// The HR side: a new hire is entered in the HRIS.
	hire := time.Now().AddDate(0, 0, 3).Format(time.DateOnly)
	id, err := e2e.AddEmployee(ctx, ep, map[string]string{
		"firstName": "John", "lastName": "Smith", "department": "Engineering", "jobTitle": "Platform Engineer",
		"location": "DE-Berlin", "supervisorEId": "100", "hireDate": hire, "employmentHistoryStatus": "Full-Time",
		"status": "Active",
	})
	if err != nil {
		return fmt.Errorf("create the sample hire in the reference HRIS: %w", err)
	}
	say("HR entered a new hire: John Smith, Platform Engineer, Engineering, DE-Berlin, starts %s — HRIS employee %s", hire, id)
	say("(john.smith and jsmith already exist in the directory, so the username must fall back)")

	res, err := run.StartJoiner(ctx, c, cfg, workflows.JoinerInput{HRISID: id, Source: "make-run", RequestedBy: "demo"})
	if err != nil {
		return err
	}
	if res.Outcome == run.Started {
		say("joiner %s %s", res.WorkflowID, res.Outcome)
	} else {
		// The HRIS's webhook reached the running intake first; both name
		// the same workflow ID, so they collapse onto one joiner.
		say("joiner %s %s — the HRIS webhook to the intake started it first; one HR record, one joiner", res.WorkflowID, res.Outcome)
	}
	say("Temporal UI: %s", res.UIURL)

	final, err := follow(ctx, c, cfg, ep, ib, id)
	if err != nil {
		return err
	}
	if err := verify(ctx, cfg, ep, id, final); err != nil {
		return err
	}
	if err := serviceAccount(ctx, c, cfg, ib); err != nil {
		return err
	}
	waiting, err := webhookHire(ctx, c, ep)
	if err != nil {
		return err
	}
	link := strings.TrimRight(cfg.InboxURL, "/") + "/joiners/" + workflows.JoinerWorkflowID(waiting)

	fmt.Printf(`
Everything is still running:
  Approval inbox %s  (starter serve; log .state/logs/serve.log)
  Temporal UI    %s  (filter: JoinerStage = "AwaitingApproval")
  Mailpit        %s  (the e-mails Joinery sent)
  Vault          %s  (root token in %s)
  LDAP           %s  (bind %s)
  HRIS           %s

Joiner %s (started by the HRIS webhook) waits for its manager. Approve it in your browser:
  open %s
  sign in as ada.lovelace / dev-ada-pass; it is on "Waiting for me"; review the plan, Approve
  (the other seed people sign in as grace.hopper / dev-grace-pass and alan.turing / dev-alan-pass;
   neither decides this joiner, so it is not on their "Waiting for me" and its page is "Not found")
or from another terminal (the CLI asks for ada's password; the inbox signs the decision):
  eval "$(bin/devstack env)"
  bin/starter approve %s --as ada.lovelace --comment "welcome"
  bin/starter audit %s
Start another joiner:
  bin/starter start 200                     # José Ñúñez, seeded pending hire (manager ada.lovelace)
  bin/starter status 200
  bin/starter approve 200 --as ada.lovelace # or in the inbox
  bin/starter list --kind service-account --expiring-within 120d
  bin/starter audit nhi-reporting-sync-production
Ctrl-C stops the inbox, the intake, the worker and the sweeper%s.
`, cfg.InboxURL, ep.TemporalUIURL, ep.MailpitAPIURL, ep.VaultAddr, filepath.Join(ep.StateDir, "vault", "root-token"), ep.LDAPURL, ep.LDAPBindDN, ep.HRISURL,
		waiting, link, waiting, waiting, map[bool]string{true: "", false: " and the stack"}[wasUp])
	<-ctx.Done()
	fmt.Println()
	return nil
}

// proc is a process the demo started; exited closes once it has ended.
type proc struct {
	cmd    *exec.Cmd
	name   string
	exited chan struct{}
}

// startProcess starts one of Joinery's binaries against the dev stack in
// its own process group, logging to .state/logs/<log>.log. Ctrl-C reaches
// the demo, which then stops the process gracefully itself.
func startProcess(ep stack.Endpoints, repo string, env []string, name, log, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(ep.StateDir, "logs", log+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = repo
	cmd.Env = append(append(os.Environ(), env...), "JOINERY_POLICY_FILE="+filepath.Join(repo, "testdata/policy/default.yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, name: name, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	say("%s started (pid %d), log %s", name, cmd.Process.Pid, logPath)
	return p, nil
}

// stop ends a process the demo started, by its PID: SIGTERM for a graceful
// shutdown, SIGKILL if it has not ended 15 seconds later.
func (p *proc) stop() {
	say("stopping %s (pid %d)", p.name, p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// startServe runs `starter serve` and waits until the intake and the inbox
// both answer. Something else already listening on their ports (another
// `starter serve`) would take the demo's webhooks and decisions, so that
// stops the demo with the reason instead.
func startServe(ctx context.Context, ep stack.Endpoints, repo string, env []string, cfg config.Config) (*proc, error) {
	for _, addr := range []string{cfg.IntakeAddr, cfg.InboxAddr} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil, fmt.Errorf("something already listens on %s (another `starter serve`?); stop it first, it is not the demo's", addr)
		}
	}
	p, err := startProcess(ep, repo, env, "starter serve (intake + inbox)", "serve", filepath.Join(ep.BinDir, "starter"), "serve")
	if err != nil {
		return nil, err
	}
	for _, u := range []string{"http://" + cfg.IntakeAddr + "/healthz", strings.TrimRight(cfg.InboxURL, "/") + "/healthz"} {
		healthy := false
		for i := 0; i < 100 && !healthy; i++ {
			select {
			case <-p.exited:
				return nil, errors.New("starter serve exited at start; see .state/logs/serve.log")
			case <-ctx.Done():
				return nil, ctx.Err()
			default:
			}
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
				healthy = resp.StatusCode == http.StatusOK
			}
			if !healthy {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !healthy {
			p.stop()
			return nil, fmt.Errorf("starter serve did not answer on %s; see .state/logs/serve.log", u)
		}
	}
	say("intake listening on %s (HRIS webhooks); approval inbox on %s", cfg.IntakeAddr, cfg.InboxURL)
	return p, nil
}

// inboxAPI is the approval inbox's JSON API, which `starter approve` uses:
// each request proves the person with their own directory password (HTTP
// Basic), and the inbox signs the decision it passes on.
type inboxAPI struct {
	base string
	hc   *http.Client
}

// waiting is the person's "Waiting for me".
func (a inboxAPI) waiting(ctx context.Context, user string) ([]inbox.WaitingJoiner, error) {
	var rows []inbox.WaitingJoiner
	code, err := a.call(ctx, http.MethodGet, "/api/v1/waiting", user, nil, &rows)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("inbox: waiting list for %s: HTTP %d", user, code)
	}
	return rows, err
}

// decide sends one decision as user and returns the inbox's answer.
func (a inboxAPI) decide(ctx context.Context, user, workflowID string, req inbox.DecisionRequest) (inbox.DecisionResponse, error) {
	var ans struct {
		inbox.DecisionResponse
		inbox.APIError
	}
	code, err := a.call(ctx, http.MethodPost, "/api/v1/joiners/"+url.PathEscape(workflowID)+"/decision", user, req, &ans)
	if err != nil {
		return inbox.DecisionResponse{}, err
	}
	if code != http.StatusOK && code != http.StatusAccepted {
		msg := ans.Message
		if ans.Error != "" {
			msg = ans.Error
		}
		return ans.DecisionResponse, fmt.Errorf("inbox refused %s's %s of %s: HTTP %d: %s", user, req.Action, workflowID, code, msg)
	}
	return ans.DecisionResponse, nil
}

func (a inboxAPI) call(ctx context.Context, method, path, user string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.base, "/")+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(user, devPasswords[user])
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the approval inbox at %s did not answer: %w", a.base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(raw, out); err != nil {
		return resp.StatusCode, fmt.Errorf("inbox %s %s: HTTP %d, unreadable answer %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

// follow prints each stage as it happens; when the joiner asks, it shows a
// name-only approve signal being refused, then approves as the manager
// through the inbox, and returns the final result.
func follow(ctx context.Context, c client.Client, cfg config.Config, ep stack.Endpoints, ib inboxAPI, id string) (*workflows.JoinerResult, error) {
	var last workflows.Stage
	var final *workflows.JoinerResult
	approved := false
	err := watch(ctx, c, id, 3*time.Minute, "the joiner did not finish (see .state/logs/worker.log)",
		func(st workflows.Status, res *workflows.JoinerResult, err error) (bool, error) {
			if err != nil && res == nil {
				return false, nil
			}
			if st.Stage != last {
				say("stage: %s", st.Stage)
				if last == "" || (last == workflows.StageValidating && st.Plan != nil) {
					printPlan(st)
				}
				last = st.Stage
			}
			if st.Stage == workflows.StageAwaitingApproval && !approved && st.Plan != nil {
				approved = true
				if err := approveInInbox(ctx, c, cfg, ep, ib, id, st); err != nil {
					return false, err
				}
			}
			if res == nil && st.Stage == stageProvisioned {
				// Provisioned and held open until the start date: what
				// was created is done, and the result so far is in the
				// status.
				res = resultFromStatus(st)
			}
			if res == nil {
				return false, nil
			}
			final = res
			say("stage: %s — outcome %s", res.Stage, res.Outcome)
			if res.Outcome != workflows.OutcomeCompleted && res.Stage != stageProvisioned {
				return true, fmt.Errorf("joiner ended %s: %s", res.Outcome, res.Error)
			}
			for _, d := range res.Approvals {
				if d.Refused == "" {
					say("approval on record: %s, approved=%t, signed=%t (key %s), via %s, %q", d.Approver, d.Approved, d.Signed, d.KeyID, d.Via, d.Comment)
				}
			}
			return true, nil
		})
	return final, err
}

// approveInInbox is the approval step of the first joiner: the e-mail, the
// refused name-only signal, the manager's "Waiting for me" and her signed
// approval through the inbox.
func approveInInbox(ctx context.Context, c client.Client, cfg config.Config, ep stack.Endpoints, ib inboxAPI, id string, st workflows.Status) error {
	approver := st.Plan.Approval.Approver
	wfID := workflows.JoinerWorkflowID(id)
	say("the joiner waits for %s (policy route %q) and asks by e-mail", approver, st.Plan.Approval.Rule)
	if m, ok := approvalMail(ctx, ep, id); ok {
		say("  Mailpit: to %s, %q, link %s", m.to, m.subject, m.link)
	} else {
		say("  (the approval e-mail is not in Mailpit yet: %s)", ep.MailpitAPIURL)
	}

	// What an approval used to be: a signal naming the approver, which
	// anyone with Temporal access (Web UI "Send a Signal", `temporal
	// workflow signal`) can send. The joiner records it as refused, with
	// the sender's Temporal identity, and keeps waiting.
	say("someone with Temporal access sends the %q signal {\"approver\": %q} — a name, no inbox signature:", workflows.SignalApprove, approver)
	if err := run.Signal(ctx, c, id, workflows.SignalApprove, workflows.ApprovalSignal{Approver: approver, Comment: "approved, trust me"}); err != nil {
		return err
	}
	var refused workflows.Status
	if err := watch(ctx, c, id, 30*time.Second, "the name-only signal was not recorded",
		func(now workflows.Status, _ *workflows.JoinerResult, err error) (bool, error) {
			refused = now
			return err == nil && now.Refused > st.Refused, nil
		}); err != nil {
		return err
	}
	for _, d := range refused.Approvals {
		if d.Refused != "" {
			say("  the joiner refused it: %q (claimed approver %s, via %s); stage still %s", d.Refused, d.Approver, d.Via, refused.Stage)
		}
	}
	if rec, err := audit.Build(ctx, c, wfID); err == nil {
		for _, e := range rec.Timeline {
			if strings.Contains(e.What, "signal "+workflows.SignalApprove+" sent by") {
				say("  audit: %s", e.What)
			}
		}
	}

	// The real approval: the manager signs in to the inbox (the CLI's JSON
	// API, HTTP Basic with her directory password) and approves there.
	var row *inbox.WaitingJoiner
	if err := watch(ctx, c, id, 30*time.Second, "the joiner did not appear in "+approver+"'s inbox",
		func(workflows.Status, *workflows.JoinerResult, error) (bool, error) {
			rows, err := ib.waiting(ctx, approver)
			if err != nil {
				return false, err
			}
			for i := range rows {
				if rows[i].WorkflowID == wfID {
					row = &rows[i]
				}
			}
			return row != nil, nil
		}); err != nil {
		return err
	}
	say("%s signs in to the inbox (%s, directory password): \"Waiting for me\" lists %s — may %s, policy %s, plan %s",
		approver, cfg.InboxURL, wfID, strings.Join(row.Actions, "/"), row.PolicyVersion, short(row.PlanHash))
	say("  (in a browser: %s/joiners/%s; from the CLI: bin/starter approve %s --as %s, which asks for the password)", strings.TrimRight(cfg.InboxURL, "/"), wfID, id, approver)
	ans, err := ib.decide(ctx, approver, wfID, inbox.DecisionRequest{Action: "approve", Comment: "welcome aboard (make run)", Wait: true, PlanHash: row.PlanHash})
	if err != nil {
		return err
	}
	say("  %s approves; the inbox signs the decision for that plan, the joiner verifies it: %s (%s)", approver, ans.Outcome, ans.Message)
	return nil
}

// stageProvisioned is the stage of an employee joiner that is provisioned
// and kept open until the start date, so that a rescinded offer still rolls
// back (workflows.StageProvisioned where the workflow has that version).
const stageProvisioned workflows.Stage = "Provisioned"

// resultFromStatus is a held joiner's result so far, from its status.
func resultFromStatus(st workflows.Status) *workflows.JoinerResult {
	res := &workflows.JoinerResult{HRISID: st.HRISID, Stage: st.Stage, Outcome: "provisioned (held open until the start date)",
		PolicyVersion: st.PolicyVersion, Username: st.Username, DN: st.DN, Approvals: st.Approvals}
	for _, r := range st.Resources {
		if r.Kind == "group-membership" && r.UndoneAt == nil {
			res.Groups = append(res.Groups, r.ID)
		}
	}
	for _, r := range st.Plan.UsernameRules {
		if r.Candidate == st.Username {
			res.UsernameRule = r.Rule
		}
	}
	return res
}

// short abbreviates a plan hash for a log line.
func short(h string) string {
	if len(h) > 20 {
		return h[:20] + "…"
	}
	return h
}

// sentMail is an e-mail as Mailpit holds it.
type sentMail struct{ to, subject, link string }

// approvalMail looks in Mailpit for the joiner's approval request (its
// subject names only the HR ID) and the inbox link in its body.
func approvalMail(ctx context.Context, ep stack.Endpoints, id string) (sentMail, bool) {
	subject := "Approval needed: joiner " + id
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var list struct {
			Messages []struct {
				ID      string
				Subject string
				To      []struct{ Address string }
			} `json:"messages"`
		}
		if getJSON(ctx, ep.MailpitAPIURL+"/api/v1/search?query="+url.QueryEscape(`subject:"`+subject+`"`), &list) == nil {
			for _, m := range list.Messages {
				if m.Subject != subject || len(m.To) == 0 {
					continue
				}
				var full struct{ Text string }
				_ = getJSON(ctx, ep.MailpitAPIURL+"/api/v1/message/"+url.PathEscape(m.ID), &full)
				link := ""
				for _, f := range strings.Fields(full.Text) {
					if strings.Contains(f, "/joiners/") {
						link = f
					}
				}
				return sentMail{to: m.To[0].Address, subject: m.Subject, link: link}, true
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return sentMail{}, false
}

func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// watch polls a joiner's status every 200ms and hands it to step until step
// says it is done or fails, ctx ends, or within passes (the error then says
// what did not happen).
func watch(ctx context.Context, c client.Client, id string, within time.Duration, what string,
	step func(st workflows.Status, res *workflows.JoinerResult, err error) (bool, error)) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st, res, _, err := run.Status(ctx, c, id)
		if done, err := step(st, res, err); done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s within %s", what, within)
}

func printPlan(st workflows.Status) {
	if st.Plan == nil {
		return
	}
	p := st.Plan
	say("plan (policy %s):", p.PolicyVersion)
	// Consecutive candidates from one pattern (the counter) on one line.
	for i := 0; i < len(p.UsernameRules); {
		j := i
		for j+1 < len(p.UsernameRules) && p.UsernameRules[j+1].Pattern == p.UsernameRules[i].Pattern {
			j++
		}
		if j == i {
			say("    username candidate %-22s from %s", p.UsernameRules[i].Candidate, p.UsernameRules[i].Pattern)
		} else {
			say("    username candidates %-21s from %s (%d in all; the policy caps attempts)",
				p.UsernameRules[i].Candidate+" … "+p.UsernameRules[j].Candidate, p.UsernameRules[i].Pattern, j-i+1)
		}
		i = j + 1
	}
	for _, g := range p.Groups {
		say("    group %-12s by rule %s (%s)", g.Group, g.Rule, g.Condition)
	}
	say("    approver %s, escalation to %s after %s, timeout %s", p.Approval.Approver, p.Approval.EscalateTo, p.Approval.EscalateAfter, p.Approval.Timeout)
	say("    write-back (fields Joinery owns): %s", strings.Join(p.WriteBack, ", "))
}

// verify reads each server directly to show the joiner's effects.
func verify(ctx context.Context, cfg config.Config, ep stack.Endpoints, id string, res *workflows.JoinerResult) error {
	fmt.Println()
	say("result: username %s (rule %s), DN %s", res.Username, res.UsernameRule, res.DN)
	say("        groups %s", strings.Join(res.Groups, ", "))
	if res.Credential != nil {
		say("        credential at vault %s/data/%s v%d, wrapped for %s (accessor %s)", cfg.VaultKVMount, res.Credential.Path,
			res.Credential.Version, res.Credential.DeliveredTo, res.Credential.WrapAccessor)
	}
	say("        policy %s", res.PolicyVersion)

	cn, err := run.NewConnectors(ctx, cfg)
	if err != nil {
		return err
	}
	e, err := cn.Directory.FindByEmployeeID(ctx, id, false)
	if err != nil || e == nil {
		return fmt.Errorf("LDAP check: entry for employee %s not found (%v)", id, err)
	}
	say("LDAP   %s  uid=%s mail=%s", e.DN, e.Username, strings.Join(e.Attributes["mail"], ","))
	for _, g := range res.Groups {
		in, err := cn.Directory.IsMember(ctx, cn.Directory.GroupDN(g), e.DN)
		if err != nil || !in {
			return fmt.Errorf("LDAP check: %s is not a member of %s (%v)", e.DN, g, err)
		}
	}
	say("       member of %s (each read from the group entry)", strings.Join(res.Groups, ", "))
	say("       ldapsearch -x -H %s -D '%s' -w %s -b %s '(employeeNumber=%s)'", ep.LDAPURL, ep.LDAPBindDN, ep.LDAPBindPassword, ep.LDAPBaseDN, id)

	// A joiner still held open until the start date has no final result
	// yet; its credential is where every joiner's is, wrapped for the
	// manager.
	path, to := cn.Secrets.JoinerPath(id, "initial-credential"), ""
	if res.Credential != nil {
		path, to = res.Credential.Path, res.Credential.DeliveredTo
	}
	for _, d := range res.Approvals {
		if to == "" && d.Refused == "" && d.Approved {
			to = d.Approver
		}
	}
	md, ok, err := cn.Secrets.Metadata(ctx, path)
	if err != nil || !ok {
		return fmt.Errorf("vault check: metadata for %s not found (%v)", path, err)
	}
	say("Vault  %s: current version %d, metadata %v (the value stays in Vault)", path, md.CurrentVersion, md.CustomMetadata)
	fi := activities.FileInbox{Dir: cfg.InboxDir}
	say("       %s's single-use wrapped token: %s/handover in the inbox (shown once), or", to, strings.TrimRight(cfg.InboxURL, "/"))
	say("       VAULT_ADDR=%s bin/vault unwrap $(cat %s)", ep.VaultAddr, fi.HandoverPath(to, id))

	w, err := cn.HRIS.GetWorker(ctx, id)
	if err != nil {
		return err
	}
	say("HRIS   employee %s now has workEmail=%s customUsername=%s", id, w.WorkEmail, w.Username)
	say("Temporal: bin/temporal workflow show --workflow-id %s   (no secret value in the history)", workflows.JoinerWorkflowID(id))
	return nil
}

// serviceAccount requests a non-human joiner: a production service account
// sponsored by ada.lovelace, which policy makes a two-person approval; both
// approve through the inbox.
func serviceAccount(ctx context.Context, c client.Client, cfg config.Config, ib inboxAPI) error {
	fmt.Println()
	name, env := "reporting-sync", "production"
	key := workflows.NonHumanKey(name, env)
	until := time.Now().UTC().AddDate(0, 0, 90).Format(time.DateOnly)
	say("a team asks for a service account: %s in %s, sponsored by ada.lovelace (HRIS 100), until %s", name, env, until)
	res, err := run.StartJoiner(ctx, c, cfg, workflows.JoinerInput{HRISID: key, Kind: "service-account", Source: "make-run", RequestedBy: "demo",
		Request: &activities.NonHumanRequest{Name: name, SponsorID: "100", Environment: env, Purpose: "nightly export of reporting data",
			StartDate: time.Now().UTC().Format(time.DateOnly), EndDate: until}})
	if err != nil {
		return err
	}
	say("joiner %s %s — %s", res.WorkflowID, res.Outcome, res.UIURL)
	sent := false
	return watch(ctx, c, key, 2*time.Minute, "the service account did not become active (see .state/logs/worker.log)",
		func(st workflows.Status, final *workflows.JoinerResult, err error) (bool, error) {
			if err == nil && st.Stage == workflows.StageAwaitingApproval && !sent && st.Plan != nil {
				sent = true
				ap := st.Plan.Approval
				say("policy route %q: the sponsor %s approves, and %s as second approver (production), each signed in to the inbox", ap.Rule, ap.Approver, ap.SecondApprover)
				for _, who := range []string{ap.Approver, ap.SecondApprover} {
					if who == "" {
						continue
					}
					ans, err := ib.decide(ctx, who, res.WorkflowID, inbox.DecisionRequest{Action: "approve", Comment: "ok (make run)", Wait: true, PlanHash: st.PlanHash})
					if err != nil {
						return false, err
					}
					say("  %s approves in the inbox: %s (%s)", who, ans.Outcome, ans.Message)
				}
			}
			if err == nil && st.Stage == workflows.StageActive && st.Workload != nil {
				wl := st.Workload
				say("service account active: %s, owner %s, access until %s (then revoked automatically)", st.DN, st.Owner, st.EndDate)
				say("Vault AppRole %s, role_id %s; its SecretID went to %s wrapped (single use)", wl.RoleName, wl.RoleID, wl.DeliveredTo)
				say("scoped token policy %s:", wl.PolicyName)
				for _, line := range strings.Split(strings.TrimSpace(wl.PolicyHCL), "\n") {
					say("    %s", line)
				}
				return true, nil
			}
			if final != nil {
				return true, fmt.Errorf("service account ended %s: %s", final.Outcome, final.Error)
			}
			return false, nil
		})
}

// webhookHire shows the HR-triggered path: HR enters a hire, the reference
// HRIS delivers a signed webhook to the running intake, and the intake
// starts the joiner, which then waits for its manager in the inbox.
func webhookHire(ctx context.Context, c client.Client, ep stack.Endpoints) (string, error) {
	fmt.Println()
	say("HR enters another hire...")
	id, err := e2e.AddEmployee(ctx, ep, map[string]string{
		"firstName": "Hedy", "lastName": "Lamarr", "department": "Engineering", "jobTitle": "Radio Engineer",
		"location": "US-Remote", "supervisorEId": "100", "hireDate": time.Now().AddDate(0, 0, 5).Format(time.DateOnly),
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	if err != nil {
		return "", err
	}
	say("HRIS employee %s created; the HRIS sends a signed webhook (X-BambooHR-Signature) to the intake", id)
	err = watch(ctx, c, id, 20*time.Second, "no joiner for HRIS employee "+id+" appeared (see .state/logs/serve.log and hris.log)",
		func(st workflows.Status, _ *workflows.JoinerResult, err error) (bool, error) {
			if err != nil || st.Stage != workflows.StageAwaitingApproval || st.Plan == nil {
				return false, nil
			}
			say("joiner-%s was started by the webhook and waits for %s's approval in the inbox", id, st.Plan.Approval.Approver)
			return true, nil
		})
	return id, err
}

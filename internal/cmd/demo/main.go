// Command demo is `make run`: it brings up the dev stack, starts a worker,
// creates a sample new hire in the reference HRIS and follows the joiner end
// to end — plan, approval by the manager (the same signal an operator sends
// from the Web UI or the CLI), username fallback, account, groups, credential,
// write-back — then checks each server directly and keeps everything running
// until Ctrl-C.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/e2e"
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
	say("starting the dev stack (Temporal + UI, Vault, slapd, reference HRIS)...")
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

	worker, err := startWorker(ep, repo, env)
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the worker (pid %d)", worker.Process.Pid)
		_ = worker.Process.Signal(syscall.SIGTERM)
		_, _ = worker.Process.Wait()
		if !wasUp {
			say("stopping the dev stack it started")
			_ = stack.Down(context.Background(), scfg)
		} else {
			say("the dev stack was already up before `make run`; leaving it running (make stack-down stops it)")
		}
	}()

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
	say("joiner %s %s", res.WorkflowID, res.Outcome)
	say("Temporal UI: %s", res.UIURL)

	final, err := follow(ctx, c, cfg, id)
	if err != nil {
		return err
	}
	if err := verify(ctx, cfg, ep, id, final); err != nil {
		return err
	}
	if err := serviceAccount(ctx, c, cfg); err != nil {
		return err
	}
	waiting, err := webhookHire(ctx, c, cfg, ep, repo, env)
	if err != nil {
		return err
	}

	fmt.Printf(`
Everything is still running:
  Temporal UI   %s  (filter: JoinerStage = "AwaitingApproval")
  Vault         %s  (root token in %s)
  LDAP          %s  (bind %s)
  HRIS          %s
Joiner %s (started by the HRIS webhook) waits for its manager. From another terminal:
  eval "$(bin/devstack env)"
  bin/starter list --stage awaiting-approval --manager ada.lovelace   # the Web UI filter: JoinerStage = "AwaitingApproval"
  bin/starter approve %s --as ada.lovelace --comment "welcome"
  bin/starter audit %s
Start another joiner:
  bin/starter start 200                     # José Ñúñez, seeded pending hire (manager ada.lovelace)
  bin/starter status 200
  bin/starter approve 200 --as ada.lovelace --comment "welcome"
  bin/starter list --kind service-account --expiring-within 120d
  bin/starter audit nhi-reporting-sync-production
Ctrl-C stops the worker%s.
`, ep.TemporalUIURL, ep.VaultAddr, filepath.Join(ep.StateDir, "vault", "root-token"), ep.LDAPURL, ep.LDAPBindDN, ep.HRISURL,
		waiting, waiting, waiting, map[bool]string{true: "", false: " and the stack"}[wasUp])
	<-ctx.Done()
	fmt.Println()
	return nil
}

func startWorker(ep stack.Endpoints, repo string, env []string) (*exec.Cmd, error) {
	logPath := filepath.Join(ep.StateDir, "logs", "worker.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(ep.BinDir, "worker"))
	cmd.Dir = repo
	cmd.Env = append(append(os.Environ(), env...), "JOINERY_POLICY_FILE="+filepath.Join(repo, "testdata/policy/default.yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: Ctrl-C reaches the demo, which then stops the
	// worker gracefully itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	say("worker started (pid %d), log %s", cmd.Process.Pid, logPath)
	return cmd, nil
}

// follow prints each stage as it happens, approves as the manager when the
// joiner asks, and returns the final result.
func follow(ctx context.Context, c client.Client, cfg config.Config, id string) (*workflows.JoinerResult, error) {
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
			if st.Stage == workflows.StageAwaitingApproval && !approved {
				approver := st.Plan.Approval.Approver
				say("the joiner waits for %s (policy route %q); approving as %s with the %q signal —", approver, st.Plan.Approval.Rule, approver, workflows.SignalApprove)
				say("  the same signal as Web UI → Send a Signal, or: bin/starter approve %s --as %s", id, approver)
				if err := run.Signal(ctx, c, id, workflows.SignalApprove, workflows.ApprovalSignal{Approver: approver, Comment: "welcome aboard (make run)"}); err != nil {
					return false, err
				}
				approved = true
			}
			if res == nil {
				return false, nil
			}
			final = res
			say("stage: %s — outcome %s", res.Stage, res.Outcome)
			if res.Outcome != workflows.OutcomeCompleted {
				return true, fmt.Errorf("joiner ended %s: %s", res.Outcome, res.Error)
			}
			return true, nil
		})
	return final, err
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
	say("       ldapsearch -x -H %s -D '%s' -w %s -b %s '(employeeNumber=%s)'", ep.LDAPURL, ep.LDAPBindDN, ep.LDAPBindPassword, ep.LDAPBaseDN, id)

	if res.Credential != nil {
		md, ok, err := cn.Secrets.Metadata(ctx, res.Credential.Path)
		if err != nil || !ok {
			return fmt.Errorf("vault check: metadata for %s not found (%v)", res.Credential.Path, err)
		}
		say("Vault  %s: current version %d, metadata %v (the value stays in Vault)", res.Credential.Path, md.CurrentVersion, md.CustomMetadata)
		inbox := activities.FileInbox{Dir: cfg.InboxDir}
		say("       the manager's single-use wrapped token: %s", inbox.HandoverPath(res.Credential.DeliveredTo, id))
		say("       VAULT_ADDR=%s bin/vault unwrap $(cat %s)", ep.VaultAddr, inbox.HandoverPath(res.Credential.DeliveredTo, id))
	}

	w, err := cn.HRIS.GetWorker(ctx, id)
	if err != nil {
		return err
	}
	say("HRIS   employee %s now has workEmail=%s customUsername=%s", id, w.WorkEmail, w.Username)
	say("Temporal: bin/temporal workflow show --workflow-id %s   (no secret value in the history)", workflows.JoinerWorkflowID(id))
	return nil
}

// serviceAccount requests a non-human joiner: a production service account
// sponsored by ada.lovelace, which policy makes a two-person approval.
func serviceAccount(ctx context.Context, c client.Client, cfg config.Config) error {
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
				ap := st.Plan.Approval
				say("policy route %q: the sponsor %s approves, and %s as second approver (production)", ap.Rule, ap.Approver, ap.SecondApprover)
				for _, who := range []string{ap.Approver, ap.SecondApprover} {
					if who == "" {
						continue
					}
					if err := run.Signal(ctx, c, key, workflows.SignalApprove, workflows.ApprovalSignal{Approver: who, Comment: "ok (make run)"}); err != nil {
						return false, err
					}
				}
				sent = true
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

// webhookHire shows the HR-triggered path: the intake (starter serve) runs
// for a moment, HR enters a hire, the reference HRIS delivers a signed
// webhook and the intake starts the joiner, which then waits for approval.
// The intake is stopped again so that later HR test traffic does not start
// joiners on this worker.
func webhookHire(ctx context.Context, c client.Client, cfg config.Config, ep stack.Endpoints, repo string, env []string) (string, error) {
	fmt.Println()
	logf, err := os.OpenFile(filepath.Join(ep.StateDir, "logs", "intake.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	serve := exec.Command(filepath.Join(ep.BinDir, "starter"), "serve")
	serve.Dir, serve.Stdout, serve.Stderr = repo, logf, logf
	serve.Env = append(os.Environ(), env...)
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := serve.Start(); err != nil {
		return "", fmt.Errorf("start the intake: %w", err)
	}
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		_, _ = serve.Process.Wait()
		say("intake stopped (log .state/logs/intake.log)")
	}()
	healthy := false
	for i := 0; i < 50 && !healthy; i++ {
		if resp, err := http.Get("http://" + cfg.IntakeAddr + "/healthz"); err == nil {
			resp.Body.Close()
			healthy = resp.StatusCode == http.StatusOK
		}
		if !healthy {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !healthy {
		return "", fmt.Errorf("the intake did not answer on %s; see .state/logs/intake.log", cfg.IntakeAddr)
	}
	say("intake listening on %s (starter serve); HR enters another hire...", cfg.IntakeAddr)
	id, err := e2e.AddEmployee(ctx, ep, map[string]string{
		"firstName": "Hedy", "lastName": "Lamarr", "department": "Engineering", "jobTitle": "Radio Engineer",
		"location": "US-Remote", "supervisorEId": "100", "hireDate": time.Now().AddDate(0, 0, 5).Format(time.DateOnly),
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	if err != nil {
		return "", err
	}
	say("HRIS employee %s created; the HRIS sends a signed webhook (X-BambooHR-Signature) to the intake", id)
	err = watch(ctx, c, id, 20*time.Second, "no joiner for HRIS employee "+id+" appeared (see .state/logs/intake.log and hris.log)",
		func(st workflows.Status, _ *workflows.JoinerResult, err error) (bool, error) {
			if err != nil || st.Stage != workflows.StageAwaitingApproval {
				return false, nil
			}
			say("joiner-%s was started by the webhook and waits for %s's approval", id, st.Plan.Approval.Approver)
			return true, nil
		})
	return id, err
}

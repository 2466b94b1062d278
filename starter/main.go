// Command starter is Joinery's operator CLI and (later) HR intake server.
//
//	starter start HRIS_ID [--kind K] [--as OPERATOR]        start a joiner (or report the existing one)
//	starter rehire HRIS_ID [--as OPERATOR]                  start a rehire: re-enable the leaver's entry once approved
//	starter approve ID --as USER [--comment C] [--wait]     approve through the approval inbox (password prompted)
//	starter reject ID --as USER [--comment C] [--wait]      reject through the approval inbox
//	starter rescind ID --as USER [--reason R]               withdraw the offer: stop and roll back
//	starter move-start ID YYYY-MM-DD [--as USER]            move the hire date (and the provisioning timer)
//	starter status ID [--json]                              stage, plan, approvals, resources, result
//	starter list [--stage S] [--manager U] [--kind K] [--expiring-within 30d]
//	starter audit ID [--json]                               the audit record, from the workflow history
//	starter request KIND NAME --sponsor ID --environment E --purpose P --until DATE
//	starter extend ID DATE --as OWNER | starter revoke ID --as USER
//	starter serve                                           HR intake (webhooks, API, bulk, SCIM) and approval inbox
//	starter inbox                                           the approval inbox alone
//	starter hold list|release|discard                       events the blast-radius guard held
//	starter codec-server | codec-key                        payload codec endpoint for the Web UI; a new key line
//	starter import FILE                                     start a joiner per CSV / JSONL row
//	starter policy check FILE | policy plan FILE RECORD.json
//	starter reconcile [--dry-run] | reconcile schedule       the reconciler, once or as a Temporal Schedule
//
// ID is an HRIS employee ID or a workflow ID (joiner-<HRIS ID>).
//
// Exit codes: 0 done; 1 failed (the message says why); 2 usage error;
// 3 the joiner already exists (start) or refused the request (approve --wait).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/joinery/joinery/internal/config"
)

// Exit codes a shell script can rely on.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitRefused = 3
)

const usage = `usage: starter COMMAND [ARGS]

commands:
  start HRIS_ID [--kind K] [--as OPERATOR]      start a joiner for an HR record
  rehire HRIS_ID [--as OPERATOR] [--json]       start a rehire (joiner-<id>~gN): once approved it re-enables
                                                the entry an earlier joiner created and the leaver disabled
  approve ID [--as USER] [--comment C] [--wait] [--password-stdin]
                                                approve as USER (default $USER) through the approval
                                                inbox (JOINERY_INBOX_URL); the directory password is
                                                prompted, never a flag
  approve|reject ID --break-glass --reason R [--as OPERATOR]
                                                an operator decision without the inbox, accepted only
                                                where the policy route enables break_glass
  reject ID [--as USER] [--comment C] [--wait]  reject as USER through the approval inbox
  rescind ID --as USER [--reason R]             withdraw the offer; the joiner rolls back
  move-start ID YYYY-MM-DD [--as USER]          move the hire date
  status ID [--json]                            show stage, plan, approvals, resources, result
  list [--stage S] [--manager U] [--kind K] [--department D] [--expiring-within 30d] [--json]
                                                joiners, filtered the way the Web UI filters
  audit ID [--json]                             the audit record, built from the workflow history
  request KIND NAME --sponsor HRIS_ID --environment ENV --purpose TEXT --until YYYY-MM-DD [--tool T]...
                                                a non-human joiner (service-account, pipeline, ai-agent)
  extend ID YYYY-MM-DD --as OWNER               extend time-bound access (within policy's lifetime)
  revoke ID --as USER [--reason R]              end time-bound access now
  serve [--inbox-addr A]                        run the HR intake (JOINERY_INTAKE_ADDR) and the approval
                                                inbox (JOINERY_INBOX_ADDR; --inbox-addr= runs the intake alone)
  inbox                                         run the approval inbox alone
  hold list | release (--all|ITEM...) --as OP | discard ITEM... --as OP --reason R
                                                what the blast-radius guard held
  codec-server | codec-key                      the payload codec endpoint; print a new key line
  import FILE                                   start a joiner per row of a CSV or JSONL file
  policy check FILE                             validate a policy file
  policy plan FILE RECORD.json [--json]         show what a joiner would get, touching nothing
  reconcile [--dry-run] [--key K]... [--json]  find and revoke what no live joiner accounts for (once)
  reconcile schedule [--dry-run]               create or update the reconciler's Temporal Schedule
                                                (every JOINERY_RECONCILE_INTERVAL, default 1h)

ID is an HRIS employee ID or a workflow ID (joiner-<HRIS ID>).
Configuration comes from JOINERY_* environment variables (see README).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "policy" {
		return policyCommand(args[1:], stdout, stderr)
	}
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "starter: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	ctx, cancel := commandContext(ctx, args[0])
	defer cancel()
	return cmd(ctx, cfg, args[1:], stdout, stderr)
}

// commandContext bounds the quick operator commands, so that a dead Temporal
// cannot hang a script, and leaves serve and import, which run as long as
// their work does, to end only on cancellation (Ctrl-C, SIGTERM: see main).
func commandContext(ctx context.Context, name string) (context.Context, context.CancelFunc) {
	switch name {
	case "serve", "import", "inbox", "codec-server", "reconcile":
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, 2*time.Minute)
}

type command func(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int

// errUsage marks argument problems (exit 2).
var errUsage = errors.New("usage")

// parseInterleaved lets flags follow positional arguments
// (`approve 200 --as ada`), which Go's flag package alone does not.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

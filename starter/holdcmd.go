package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/workflows"
)

func init() { commands["hold"] = cmdHold }

const holdUsage = `usage: starter hold list [--json]
       starter hold release (--all | ITEM...) --as OPERATOR [--json]
       starter hold discard (--all | ITEM...) --as OPERATOR --reason TEXT

The intake's blast-radius guard holds joiner starts and rescinds beyond the
policy's intake.blast_radius until an operator decides. ITEM is a hold key
(start:200, rescind:200) or an HR ID (every item of that record).

  list     what is held, the window's counts and the last decisions
  release  carries the items out now (starts joiners, sends rescinds); the HR
           record is checked again, and a joiner is started at most once
  discard  drops the items for good; the hold records who and why

Flags: --hold-id ID names the hold workflow (default intake-hold, or
intake-hold-QUEUE on a task queue other than joinery-joiners).
Exit status: 0 done, 1 failed (items that failed stay held), 2 usage.
`

// cmdHold runs `starter hold list|release|discard`.
func cmdHold(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, holdUsage)
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("hold "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, holdUsage) }
	holdID := fs.String("hold-id", intake.HoldID(cfg), "the hold workflow's ID")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	all := fs.Bool("all", false, "every held item")
	// No default from $USER: who released or discarded is the audit trail,
	// so it is said, not guessed.
	as := fs.String("as", "", "the operator deciding (required for release and discard)")
	reason := fs.String("reason", "", "why (required for discard)")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		fmt.Fprint(stderr, holdUsage)
		return exitUsage
	}
	switch sub {
	case "list":
		if len(pos) != 0 || *all {
			fmt.Fprint(stderr, holdUsage)
			return exitUsage
		}
	case "release", "discard":
		if (*all) == (len(pos) > 0) || strings.TrimSpace(*as) == "" || (sub == "discard" && strings.TrimSpace(*reason) == "") {
			fmt.Fprint(stderr, holdUsage)
			return exitUsage
		}
	default:
		fmt.Fprint(stderr, holdUsage)
		return exitUsage
	}
	c, ok := dial(ctx, cfg, stderr)
	if !ok {
		return exitFailed
	}
	defer c.Close()
	h := intake.HoldFor(c, cfg)
	h.ID = *holdID
	// This command hosts the hold while it runs, so it answers even when no
	// intake is up.
	stop, err := h.StartWorker()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer stop()
	v, err := h.View(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if sub == "list" {
		if *asJSON {
			_ = json.NewEncoder(stdout).Encode(v)
		} else {
			printHold(stdout, v)
		}
		return exitOK
	}
	keys := holdKeys(v, pos)
	if !*all && len(keys) == 0 {
		fmt.Fprintf(stderr, "hold %s: nothing held for %s\n", sub, strings.Join(pos, ", "))
		return exitFailed
	}
	if sub == "discard" {
		gone, err := h.Discard(ctx, keys, *all, *as, *reason)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		if *asJSON {
			_ = json.NewEncoder(stdout).Encode(gone)
		} else {
			for _, it := range gone {
				fmt.Fprintf(stdout, "%s: discarded by %s\n", it.Key(), *as)
			}
			fmt.Fprintf(stdout, "%d discarded\n", len(gone))
		}
		return exitOK
	}
	rel, err := h.Release(ctx, keys, *all, *as)
	code := exitOK
	if *asJSON {
		_ = json.NewEncoder(stdout).Encode(rel)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ITEM\tOUTCOME")
		for _, r := range rel {
			out := r.Outcome
			if r.Error != "" {
				out = "FAILED, still held: " + oneLine(r.Error)
			}
			fmt.Fprintf(tw, "%s\t%s\n", r.Key, out)
		}
		tw.Flush()
	}
	for _, r := range rel {
		if r.Error != "" {
			code = exitFailed
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return code
}

// holdKeys resolves ITEM arguments: a key as it is, an HR ID to every held
// key of that record. An argument matching nothing is passed on as given,
// so the answer can say "not held".
func holdKeys(v workflows.HoldView, args []string) []string {
	var keys []string
	for _, a := range args {
		if strings.Contains(a, ":") {
			keys = append(keys, a)
			continue
		}
		found := false
		for _, it := range v.Held {
			if it.HRISID == a {
				keys, found = append(keys, it.Key()), true
			}
		}
		if !found {
			keys = append(keys, workflows.HoldStart+":"+a)
		}
	}
	return keys
}

func printHold(w io.Writer, v workflows.HoldView) {
	l := v.Limits
	if l.Window > 0 {
		fmt.Fprintf(w, "window %s: %d/%d starts, %d/%d rescinds\n", l.Window, v.StartsInWindow, l.MaxStarts, v.RescindsInWindow, l.MaxRescinds)
	}
	fmt.Fprintf(w, "%d held\n", len(v.Held))
	if len(v.Held) > 0 {
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ITEM\tKIND\tSOURCE\tHELD AT\tDETAIL")
		for _, it := range v.Held {
			kind, detail := "", ""
			if it.Input != nil {
				kind = it.Input.Kind
				detail = "requested by " + it.Input.RequestedBy
			}
			if it.Rescind != nil {
				detail = it.Rescind.Reason
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Key(), orDash(kind), orDash(it.Source), it.HeldAt.UTC().Format(time.RFC3339), oneLine(detail))
		}
		tw.Flush()
	}
	if len(v.Log) > 0 {
		fmt.Fprintln(w, "\nlast decisions:")
		for _, e := range v.Log {
			fmt.Fprintf(w, "  %s %s %d by %s", e.At.UTC().Format(time.RFC3339), e.Decision, e.Count, e.By)
			if e.Reason != "" {
				fmt.Fprintf(w, " (%s)", e.Reason)
			}
			fmt.Fprintf(w, ": %s\n", strings.Join(e.Keys, ", "))
		}
	}
}

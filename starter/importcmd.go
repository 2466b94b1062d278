package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/run"
)

func init() { commands["import"] = cmdImport }

const importUsage = `usage: starter import FILE [--as OPERATOR] [--concurrency N] [--hold-id ID]

Starts a joiner for every row of FILE: CSV with a header row (.csv) or one
JSON object per line (.jsonl, .ndjson). Columns / keys: hrisId (required),
kind, requestedBy, eventId, hireDate, endDate, email, firstName, lastName,
department, managerId. Rows go through the same checks as the intake server:
the HR record decides (a record that is not a pending hire is refused, and so
is a kind it does not give), and the policy's blast radius holds a mass start
for an operator (` + "`starter hold list|release|discard`" + `).

Prints a table (row, HR ID, outcome, error) and totals. Exit status: 0 when
every row started, already existed or is held, 1 when any row was invalid,
refused or failed, 2 usage error.
`

// cmdImport runs `starter import FILE`.
func cmdImport(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage) }
	as := fs.String("as", operator(), "operator recorded on rows that name no requester")
	conc := fs.Int("concurrency", intake.DefaultBulkConcurrency, "starts in flight at once")
	holdID := fs.String("hold-id", intake.HoldID(cfg), "the blast-radius hold workflow's ID")
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) != 1 || *conc < 1 {
		fmt.Fprint(stderr, importUsage)
		return exitUsage
	}
	file := pos[0]
	format := intake.FormatForFile(file)
	if format == "" {
		fmt.Fprintf(stderr, "import: %s: want a .csv, .jsonl or .ndjson file\n", file)
		return exitUsage
	}
	// Counting first gives the progress bar its total and reports a bad
	// header before anything is started.
	total, err := countRows(file, format)
	if err != nil {
		fmt.Fprintf(stderr, "import: %s: %v\n", file, err)
		return exitFailed
	}
	if total == 0 {
		fmt.Fprintf(stderr, "import: %s: no rows\n", file)
		return exitFailed
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "import: %v\n", err)
		return exitFailed
	}
	defer f.Close()
	rows, err := intake.NewRowReader(format, f)
	if err != nil {
		fmt.Fprintf(stderr, "import: %s: %v\n", file, err)
		return exitFailed
	}

	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer c.Close()

	prog := newProgress(stderr, total)
	var results []intake.RowResult
	st := intake.NewTemporalStarter(c, cfg)
	defer st.Close()
	st.Hold.ID = *holdID
	tot, ierr := intake.Import(ctx, st, rows, intake.ImportOptions{
		Source: "import", RequestedBy: *as, Concurrency: *conc, MaxRows: math.MaxInt,
	}, func(r intake.RowResult) error {
		results = append(results, r)
		prog.update(len(results))
		return nil
	})
	prog.done(len(results))

	printImportSummary(stdout, results, tot)
	if ierr != nil {
		fmt.Fprintf(stderr, "import: stopped early: %v\n", ierr)
		return exitFailed
	}
	if !tot.OK() {
		return exitFailed
	}
	return exitOK
}

// countRows reads the file once without starting anything.
func countRows(file, format string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rows, err := intake.NewRowReader(format, f)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		if _, err := rows.Next(); errors.Is(err, io.EOF) {
			return n, nil
		} else if err != nil {
			return n, err
		}
		n++
	}
}

func printImportSummary(w io.Writer, results []intake.RowResult, tot intake.Totals) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tHR ID\tOUTCOME\tERROR")
	for _, r := range results {
		msg := r.Error
		if r.Field != "" && msg != "" {
			msg = r.Field + ": " + msg
		}
		if r.Reason != "" {
			msg = r.Reason + ": " + msg
		}
		if r.HoldKey != "" {
			msg = "hold " + r.HoldKey + ": " + msg
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Row, orDash(r.HRISID), r.Outcome, oneLine(msg))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d rows: %d started, %d already running, %d already done, %d invalid, %d failed",
		tot.Rows, tot.Started, tot.AlreadyRunning, tot.AlreadyDone, tot.Invalid, tot.Failed)
	// Only when they happen, so the line scripts parse stays as it was.
	if tot.Refused > 0 || tot.Held > 0 {
		fmt.Fprintf(w, ", %d refused, %d held", tot.Refused, tot.Held)
	}
	fmt.Fprintln(w)
	if tot.Held > 0 {
		fmt.Fprintf(w, "%d rows are held by the blast-radius guard: see `starter hold list`\n", tot.Held)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table cell on one line whatever the error says.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// progress draws a bar on a terminal and, elsewhere (CI logs, pipes), prints
// a plain count about every tenth of the way.
type progress struct {
	w        io.Writer
	total    int
	terminal bool
	last     time.Time
	step     int
	next     int
}

func newProgress(w io.Writer, total int) *progress {
	// Under ten rows the final count is all a log needs.
	step := total / 10
	if step == 0 {
		step = total + 1
	}
	return &progress{w: w, total: total, terminal: isTerminal(w), step: step, next: step}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(n int) {
	if p.terminal {
		if time.Since(p.last) < 100*time.Millisecond && n < p.total {
			return
		}
		p.last = time.Now()
		const width = 30
		filled := width
		if p.total > 0 {
			filled = min(width*n/p.total, width)
		}
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d rows", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), n, p.total)
		return
	}
	if n >= p.next && n < p.total {
		fmt.Fprintf(p.w, "imported %d/%d rows\n", n, p.total)
		p.next += p.step
	}
}

func (p *progress) done(n int) {
	if p.terminal {
		p.last = time.Time{}
		p.update(n)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "imported %d/%d rows\n", n, p.total)
}

package intake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/joinery/joinery/internal/run"
)

// Row is one record of a bulk file: its position, the request it carries,
// or why it could not be read (then Joiner holds what could be read).
type Row struct {
	// N counts data records from 1 (a CSV header is not a record).
	N int
	// Line is where the record starts in the file, from 1.
	Line   int
	Joiner Joiner
	Err    *FieldError
}

// RowReader yields the rows of a bulk file one at a time, so that a file of
// any size is never held in memory. Next returns io.EOF after the last row;
// any other error means the stream itself broke (too large, unreadable) and
// no further rows follow. A malformed row is not such an error: it comes
// back as a Row with Err set.
type RowReader interface {
	Next() (Row, error)
}

// Bulk formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// FormatForContentType maps a bulk upload's media type to its format ("" if
// unsupported).
func FormatForContentType(mediaType string) string {
	switch mediaType {
	case "text/csv", "application/csv":
		return FormatCSV
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return FormatJSONL
	}
	return ""
}

// FormatForFile maps a file name's extension to its format ("" if unknown).
func FormatForFile(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatCSV
	case ".jsonl", ".ndjson":
		return FormatJSONL
	}
	return ""
}

// NewRowReader returns the reader for format. For CSV it reads the header
// row at once; a header problem is a *FieldError.
func NewRowReader(format string, r io.Reader) (RowReader, error) {
	switch format {
	case FormatCSV:
		return NewCSVReader(r)
	case FormatJSONL:
		return NewJSONLReader(r), nil
	}
	return nil, fieldErr("format", "unsupported bulk format %q; want csv or jsonl", clip(format, 20))
}

// column setters, keyed by the normalised header name (lower case, without
// spaces, '_' and '-'), so "HRIS ID", "hris_id" and "hrisId" all match.
var csvColumns = map[string]func(*Joiner) *string{
	"hrisid":      func(j *Joiner) *string { return &j.HRISID },
	"kind":        func(j *Joiner) *string { return &j.Kind },
	"requestedby": func(j *Joiner) *string { return &j.RequestedBy },
	"eventid":     func(j *Joiner) *string { return &j.EventID },
	"hiredate":    func(j *Joiner) *string { return &j.HireDate },
	"enddate":     func(j *Joiner) *string { return &j.EndDate },
	"email":       func(j *Joiner) *string { return &j.Email },
	"firstname":   func(j *Joiner) *string { return &j.FirstName },
	"givenname":   func(j *Joiner) *string { return &j.FirstName },
	"lastname":    func(j *Joiner) *string { return &j.LastName },
	"familyname":  func(j *Joiner) *string { return &j.LastName },
	"department":  func(j *Joiner) *string { return &j.Department },
	"managerid":   func(j *Joiner) *string { return &j.ManagerID },
}

const knownCSVColumns = "hrisId, kind, requestedBy, eventId, hireDate, endDate, email, firstName, lastName, department, managerId"

func normaliseHeader(h string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '\t':
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(h)))
}

type csvReader struct {
	r    *csv.Reader
	cols []func(*Joiner) *string
	n    int
}

// NewCSVReader reads the header row (which must name an hrisId column and
// only known columns, each once) and returns a reader of the data rows.
// Unknown columns are refused rather than ignored: a misspelt "hrisID " or
// "kindd" column silently dropped would start joiners with the wrong data.
func NewCSVReader(r io.Reader) (RowReader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fieldErr("body", "empty; want a CSV header row naming the columns (%s)", knownCSVColumns)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, fieldErr("header", "malformed CSV header: %v", pe.Err)
	}
	if err != nil {
		return nil, err
	}
	c := &csvReader{r: cr}
	seen := map[string]bool{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF") // Excel's UTF-8 byte order mark
		}
		key := normaliseHeader(h)
		set, ok := csvColumns[key]
		if !ok {
			if key == "" {
				return nil, fieldErr("header", "column %d has no name", i+1)
			}
			return nil, fieldErr("header", "unknown column %q; known columns: %s", clip(h, 40), knownCSVColumns)
		}
		if seen[key] {
			return nil, fieldErr("header", "column %q appears twice", clip(h, 40))
		}
		seen[key] = true
		c.cols = append(c.cols, set)
	}
	if !seen["hrisid"] {
		return nil, fieldErr("hrisId", "the header has no hrisId column")
	}
	cr.FieldsPerRecord = len(header)
	return c, nil
}

func (c *csvReader) Next() (Row, error) {
	rec, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return Row{}, io.EOF
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		return Row{}, err
	}
	c.n++
	row := Row{N: c.n}
	if err != nil {
		row.Line = pe.StartLine
		if errors.Is(err, csv.ErrFieldCount) {
			row.Err = fieldErr("row", "line %d: %d fields, the header has %d", pe.StartLine, len(rec), len(c.cols))
		} else {
			row.Err = fieldErr("row", "line %d: malformed CSV: %v", pe.StartLine, pe.Err)
		}
		return row, nil
	}
	row.Line, _ = c.r.FieldPos(0)
	for i, v := range rec {
		*c.cols[i](&row.Joiner) = v
	}
	return row, nil
}

// MaxLineBytes bounds one JSON line; a longer line is reported as a bad row
// and skipped, never buffered whole.
const MaxLineBytes = 64 << 10

type jsonlReader struct {
	r    *bufio.Reader
	n    int
	line int
}

// NewJSONLReader reads one JSON object per line (NDJSON). Blank lines are
// skipped; every other line is a row.
func NewJSONLReader(r io.Reader) RowReader {
	return &jsonlReader{r: bufio.NewReaderSize(r, MaxLineBytes)}
}

func (j *jsonlReader) Next() (Row, error) {
	for {
		line, tooLong, err := j.readLine()
		atEOF := errors.Is(err, io.EOF)
		if err != nil && !atEOF {
			return Row{}, err
		}
		blank := !tooLong && len(bytes.TrimSpace(line)) == 0
		if blank {
			if atEOF {
				return Row{}, io.EOF
			}
			j.line++
			continue
		}
		j.line++
		j.n++
		row := Row{N: j.n, Line: j.line}
		if tooLong {
			row.Err = fieldErr("row", "line %d is longer than %d bytes", j.line, MaxLineBytes)
			return row, nil
		}
		var req Joiner
		if fe := decodeStrict(line, &req); fe != nil {
			if fe.Field == "body" {
				fe.Field = "row"
			}
			row.Err = fe
		}
		row.Joiner = req
		return row, nil
	}
}

// readLine returns the next line without its newline. A line longer than the
// buffer is consumed to its end and reported as tooLong.
func (j *jsonlReader) readLine() (line []byte, tooLong bool, err error) {
	for {
		chunk, err := j.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			continue
		}
		if tooLong {
			return nil, true, err
		}
		return bytes.TrimSuffix(chunk, []byte("\n")), false, err
	}
}

// RowResult is what happened to one row of a bulk upload or import. Status
// is the HTTP status the row would have had on its own (201, 200, 202 held,
// 400, 422 refused, 429 hold full, 503).
type RowResult struct {
	Row        int    `json:"row"`
	Line       int    `json:"line,omitempty"`
	HRISID     string `json:"hrisId"`
	Outcome    string `json:"outcome"`
	Status     int    `json:"status"`
	WorkflowID string `json:"workflowId,omitempty"`
	UIURL      string `json:"uiUrl,omitempty"`
	Field      string `json:"field,omitempty"`
	// Reason is the refusal's reason code (outcome refused).
	Reason string `json:"reason,omitempty"`
	// HoldKey names the held item (outcome held) for `starter hold release`.
	HoldKey string `json:"holdKey,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Totals counts the outcomes of a bulk upload or import.
type Totals struct {
	Rows           int `json:"rows"`
	Started        int `json:"started"`
	AlreadyRunning int `json:"alreadyRunning"`
	AlreadyDone    int `json:"alreadyDone"`
	Invalid        int `json:"invalid"`
	// Refused counts rows whose HR record is not a pending hire.
	Refused int `json:"refused"`
	// Held counts rows the blast-radius guard holds for an operator.
	Held int `json:"held"`
	// HoldFull counts rows the guard would have held but had no room for:
	// nothing was started or held, send them again later.
	HoldFull int `json:"holdFull"`
	Failed   int `json:"failed"`
}

// OK reports whether every row started, already existed or is held (held
// rows are accepted: nothing is lost, an operator carries them out).
func (t Totals) OK() bool {
	return t.Invalid == 0 && t.Refused == 0 && t.HoldFull == 0 && t.Failed == 0
}

func (t *Totals) add(r RowResult) {
	t.Rows++
	switch r.Outcome {
	case string(run.Started):
		t.Started++
	case string(run.AlreadyRunning):
		t.AlreadyRunning++
	case string(run.AlreadyDone):
		t.AlreadyDone++
	case OutcomeInvalid:
		t.Invalid++
	case OutcomeRefused:
		t.Refused++
	case OutcomeHeld:
		t.Held++
	case OutcomeHoldFull:
		t.HoldFull++
	default:
		t.Failed++
	}
}

// ImportOptions tune Import.
type ImportOptions struct {
	// Source is recorded on each joiner (JoinerInput.Source): "bulk", "import".
	Source string
	// RequestedBy applies to rows that name no requester.
	RequestedBy string
	// Concurrency is how many starts run at once (default DefaultBulkConcurrency).
	Concurrency int
	// MaxRows bounds the rows read (default DefaultMaxBulkRows).
	MaxRows int
	// StartTimeout bounds each start (default DefaultStartTimeout).
	StartTimeout time.Duration
}

// ErrTooManyRows: the upload has more rows than ImportOptions.MaxRows; the
// rows before the limit were processed.
var ErrTooManyRows = errors.New("too many rows")

// Import starts a joiner for every row of rows, through Normalize, with at
// most Concurrency starts in flight, and hands each result to emit in row
// order as soon as it is known. A bad row is reported and does not stop the
// others. Import returns the totals and the error that ended the stream
// early (a reader error, ErrTooManyRows, emit's error or ctx's).
func Import(ctx context.Context, st Starter, rows RowReader, opt ImportOptions, emit func(RowResult) error) (Totals, error) {
	conc := orInt(opt.Concurrency, DefaultBulkConcurrency)
	maxRows := orInt(opt.MaxRows, DefaultMaxBulkRows)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// pending holds one result channel per row in file order, so results
	// are emitted in order however the starts interleave; sem bounds the
	// starts in flight to conc, and pending's capacity the results waiting
	// behind a slow one (so memory stays bounded too).
	pending := make(chan chan RowResult, conc)
	sem := make(chan struct{}, conc)
	var readErr error
	go func() {
		defer close(pending)
		for n := 0; ; n++ {
			if ctx.Err() != nil {
				return
			}
			row, err := rows.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				readErr = err
				return
			}
			if n >= maxRows {
				readErr = fmt.Errorf("%w: more than %d rows; the rest were not read", ErrTooManyRows, maxRows)
				return
			}
			ch := make(chan RowResult, 1)
			select {
			case pending <- ch:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ch <- RowResult{Row: row.N, Line: row.Line, HRISID: clip(row.Joiner.HRISID, 64), Outcome: OutcomeError,
					Status: http.StatusServiceUnavailable, Error: "cancelled before it was started"}
				return
			}
			go func() {
				defer func() { <-sem }()
				ch <- startRow(ctx, st, row, opt)
			}()
		}
	}()

	var tot Totals
	var emitErr error
	for ch := range pending {
		res := <-ch
		if emitErr != nil {
			continue // draining after a failed emit
		}
		tot.add(res)
		if err := emit(res); err != nil {
			emitErr = err
			cancel()
		}
	}
	switch {
	case emitErr != nil:
		return tot, emitErr
	case readErr != nil:
		return tot, readErr
	}
	return tot, ctx.Err()
}

// startRow normalises one row and starts its joiner.
func startRow(ctx context.Context, st Starter, row Row, opt ImportOptions) RowResult {
	res := RowResult{Row: row.N, Line: row.Line, HRISID: clip(strings.TrimSpace(row.Joiner.HRISID), 64)}
	if row.Err != nil {
		res.Outcome, res.Status, res.Field, res.Error = OutcomeInvalid, http.StatusBadRequest, row.Err.Field, row.Err.Reason
		return res
	}
	j, err := Normalize(row.Joiner)
	if err != nil {
		fe := err.(*FieldError)
		res.Outcome, res.Status, res.Field, res.Error = OutcomeInvalid, http.StatusBadRequest, fe.Field, fe.Reason
		return res
	}
	res.HRISID = j.HRISID
	if j.RequestedBy == "" {
		j.RequestedBy = opt.RequestedBy
	}
	sctx, cancel := context.WithTimeout(ctx, orDur(opt.StartTimeout, DefaultStartTimeout))
	defer cancel()
	o := guardedStart(sctx, st, j.Input(opt.Source))
	switch {
	case errors.Is(o.err, ErrHoldFull):
		// The row's own status is 429 (the answer as a whole is 200 and
		// already on its way): the uploader sends the row again later.
		res.Outcome, res.Status, res.Error = OutcomeHoldFull, http.StatusTooManyRequests, holdFullError(o.err).Reason
	case o.err != nil:
		res.Outcome, res.Status, res.Error = OutcomeError, http.StatusServiceUnavailable, o.err.Error()
	case o.refusal != nil:
		res.Outcome, res.Status, res.Field, res.Reason, res.Error = OutcomeRefused, http.StatusUnprocessableEntity,
			o.refusal.Field, o.refusal.Reason, o.refusal.Error
	case o.held != nil:
		res.Outcome, res.Status, res.WorkflowID, res.HoldKey, res.Error = OutcomeHeld, http.StatusAccepted,
			o.held.WorkflowID, o.held.Key, o.held.Detail
	default:
		sr := *o.res
		res.Outcome, res.WorkflowID, res.UIURL = string(sr.Outcome), sr.WorkflowID, sr.UIURL
		res.Status = http.StatusOK
		if sr.Outcome == run.Started {
			res.Status = http.StatusCreated
		}
	}
	return res
}

// peekReader returns rows' first row again on the first Next, so a handler
// can refuse an empty upload with a 400 before it commits to streaming.
type peekReader struct {
	rows  RowReader
	first *Row
}

func (p *peekReader) Next() (Row, error) {
	if p.first != nil {
		r := *p.first
		p.first = nil
		return r, nil
	}
	return p.rows.Next()
}

// BulkSummary is the last line of a bulk answer.
type BulkSummary struct {
	Summary Totals `json:"summary"`
	// Error is set when the upload ended early (too large, too many rows).
	Error string `json:"error,omitempty"`
}

// handleBulk is POST /joiners:bulk: a CSV (text/csv, header row) or NDJSON
// (application/x-ndjson) upload, read row by row. Problems with the upload
// as a whole (media type, size, header, no rows) are answered 4xx before
// anything starts. After that the answer is 200 and NDJSON: one RowResult
// per row, flushed as it is known, and a BulkSummary line last.
func (s *Server) handleBulk(w http.ResponseWriter, r *http.Request) {
	if !s.allow(w, r, SourceBulk, false) {
		return
	}
	// Each upload holds a connection and its starts for up to BulkTimeout:
	// bound how many run at once, so memory and Temporal load stay bounded.
	if n := s.bulkInFlight.Add(1); int(n) > orInt(s.MaxBulkInFlight, DefaultMaxBulkInFlight) {
		s.bulkInFlight.Add(-1)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusTooManyRequests, fieldErr("rate", "%d bulk uploads are running; retry after 30 s", orInt(s.MaxBulkInFlight, DefaultMaxBulkInFlight)))
		return
	}
	defer s.bulkInFlight.Add(-1)
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(orDur(s.BulkTimeout, DefaultBulkTimeout))
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()

	format := FormatForContentType(contentType(r))
	if format == "" {
		writeError(w, http.StatusUnsupportedMediaType, fieldErr("Content-Type", "want text/csv or application/x-ndjson, got %q", clip(contentType(r), 60)))
		return
	}
	max := orInt64(s.MaxBulkBody, DefaultMaxBulkBody)
	if status, fe := checkLength(r, max); fe != nil {
		writeError(w, status, fe)
		return
	}
	body := http.MaxBytesReader(w, r.Body, max)
	rows, err := NewRowReader(format, body)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			writeError(w, http.StatusBadRequest, fe)
		} else {
			status, fe := bodyError(err)
			writeError(w, status, fe)
		}
		return
	}
	first, err := rows.Next()
	if errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fieldErr("body", "no rows"))
		return
	}
	if err != nil {
		status, fe := bodyError(err)
		writeError(w, status, fe)
		return
	}
	// Answer while the upload is still arriving: without full duplex,
	// HTTP/1 would refuse to read the rest of the body once the first
	// result line is written.
	_ = rc.EnableFullDuplex()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	enc := jsonLineWriter{w: w, rc: rc}
	reqID := requestID(r.Context())
	tot, ierr := Import(ctx, s.Starter, &peekReader{rows: rows, first: &first}, ImportOptions{
		Source: "bulk", RequestedBy: "intake-bulk", Concurrency: s.BulkConcurrency,
		MaxRows: s.MaxBulkRows, StartTimeout: s.StartTimeout,
	}, func(res RowResult) error {
		attrs := []slog.Attr{slog.String("hris_id", res.HRISID), slog.Int("row", res.Row)}
		if res.Field != "" {
			attrs = append(attrs, slog.String("field", res.Field))
		}
		if res.Outcome == OutcomeError {
			attrs = append(attrs, slog.String("err", res.Error))
		}
		s.logRow(r.Context(), SourceBulk, res.Outcome, res.Reason, attrs...)
		return enc.write(res)
	})
	sum := BulkSummary{Summary: tot}
	if ierr != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(ierr, &mbe):
			sum.Error = fmt.Sprintf("request body exceeds %d bytes; the rows after row %d were not read", mbe.Limit, tot.Rows)
		case errors.Is(ierr, ErrTooManyRows):
			sum.Error = ierr.Error()
		default:
			sum.Error = "upload ended early: " + ierr.Error()
		}
		s.logger().Warn("bulk upload ended early", "request_id", reqID, "rows", tot.Rows, "err", ierr.Error())
	}
	s.logger().Info("bulk upload", "request_id", reqID, "rows", tot.Rows, "started", tot.Started,
		"already_running", tot.AlreadyRunning, "already_done", tot.AlreadyDone, "invalid", tot.Invalid,
		"refused", tot.Refused, "held", tot.Held, "hold_full", tot.HoldFull, "failed", tot.Failed)
	_ = enc.write(sum)
}

// jsonLineWriter writes one JSON value per line and flushes it.
type jsonLineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (j jsonLineWriter) write(v any) error {
	b, err := marshalLine(v)
	if err != nil {
		return err
	}
	if _, err := j.w.Write(b); err != nil {
		return err
	}
	if j.rc != nil {
		if err := j.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	return nil
}

// marshalLine renders v as one line of JSON.
func marshalLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

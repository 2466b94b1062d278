package hrisserver

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// firstAddedID is the id the first employee created through the API gets;
// seed ids stay below it or are skipped over.
const firstAddedID = 1000

// lastChangedLayout is BambooHR's ISO 8601 form, with milliseconds so that
// two changes in the same second still get different, increasing stamps.
const lastChangedLayout = "2006-01-02T15:04:05.000-07:00"

var errNotFound = errors.New("employee not found")

// invalidError is a request the store refuses (answered with 400).
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// record is one employee row: every stored and read-only column by field name.
type record map[string]string

// value returns the API value of field name, computing derived fields.
func (r record) value(name string) string {
	if name == "displayName" {
		first := r["preferredName"]
		if first == "" {
			first = r["firstName"]
		}
		return strings.TrimSpace(first + " " + r["lastName"])
	}
	return r[name]
}

// store keeps employees in SQLite.
type store struct {
	db  *sql.DB
	now func() time.Time
}

func quote(col string) string { return `"` + col + `"` }

func openStore(ctx context.Context, path string, now func() time.Time) (*store, error) {
	// One connection serialises every transaction, which is all a reference
	// server needs and rules out SQLITE_BUSY between our own writers.
	dsn := path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	cols := []string{"id INTEGER PRIMARY KEY"}
	for _, c := range storedColumns() {
		cols = append(cols, quote(c)+" TEXT NOT NULL DEFAULT ''")
	}
	cols = append(cols, `"lastChanged" TEXT NOT NULL`)
	schema := []string{
		"CREATE TABLE IF NOT EXISTS employees (" + strings.Join(cols, ", ") + ")",
		"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	}
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("create schema: %w", err)
		}
	}
	if err := addMissingColumns(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate schema: %w", err)
	}
	return &store{db: db, now: now}, nil
}

// addMissingColumns adds fields introduced after a database was created, so
// a dev stack's existing HRIS keeps its employees across upgrades.
func addMissingColumns(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('employees')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		have[n] = true
	}
	rows.Close()
	for _, c := range storedColumns() {
		if !have[c] {
			if _, err := db.ExecContext(ctx, "ALTER TABLE employees ADD COLUMN "+quote(c)+" TEXT NOT NULL DEFAULT ''"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *store) close() error { return st.db.Close() }

func (st *store) ping(ctx context.Context) error { return st.db.PingContext(ctx) }

// allColumns are the columns of a record in a fixed order.
func allColumns() []string {
	return append(append([]string{"id"}, storedColumns()...), "lastChanged")
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getRecord(ctx context.Context, q querier, id int64) (record, error) {
	cols := allColumns()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	vals := make([]string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err := q.QueryRowContext(ctx, "SELECT "+strings.Join(quoted, ", ")+" FROM employees WHERE id = ?", id).Scan(ptrs...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	r := record{}
	for i, c := range cols {
		r[c] = vals[i]
	}
	return r, nil
}

func (st *store) get(ctx context.Context, id int64) (record, error) {
	return getRecord(ctx, st.db, id)
}

// nextLastChanged returns a stamp after prev and not before now.
func (st *store) nextLastChanged(prev string) string {
	t := st.now().UTC().Truncate(time.Millisecond)
	if p, err := time.Parse(lastChangedLayout, prev); err == nil && !t.After(p) {
		t = p.Add(time.Millisecond).UTC()
	}
	return t.Format(lastChangedLayout)
}

// update applies changes (already validated per field) to employee id and
// returns the new record and the fields whose value changed. lastChanged
// moves only when something changed, so repeating an update is a no-op.
func (st *store) update(ctx context.Context, id int64, changes map[string]string) (record, []string, error) {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	cur, err := getRecord(ctx, tx, id)
	if err != nil {
		return nil, nil, err
	}
	var changed []string
	for name, v := range changes {
		if cur[name] != v {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	if len(changed) == 0 {
		return cur, nil, tx.Commit()
	}
	if sup, ok := changes["supervisorEId"]; ok && sup != "" && sup != cur["supervisorEId"] {
		if err := checkSupervisor(ctx, tx, id, sup); err != nil {
			return nil, nil, err
		}
	}
	sets := make([]string, 0, len(changed)+1)
	args := make([]any, 0, len(changed)+2)
	for _, name := range changed {
		sets = append(sets, quote(name)+" = ?")
		args = append(args, changes[name])
		cur[name] = changes[name]
	}
	cur["lastChanged"] = st.nextLastChanged(cur["lastChanged"])
	sets = append(sets, `"lastChanged" = ?`)
	args = append(args, cur["lastChanged"], id)
	if _, err := tx.ExecContext(ctx, "UPDATE employees SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, err
	}
	return cur, changed, nil
}

func checkSupervisor(ctx context.Context, q querier, id int64, sup string) error {
	supID, err := strconv.ParseInt(sup, 10, 64)
	if err != nil {
		return invalidf("field %q: must be an employee id", "supervisorEId")
	}
	if supID == id {
		return invalidf("field %q: an employee cannot supervise themself", "supervisorEId")
	}
	if _, err := getRecord(ctx, q, supID); errors.Is(err, errNotFound) {
		return invalidf("field %q: employee %s does not exist", "supervisorEId", sup)
	} else if err != nil {
		return err
	}
	return nil
}

// add creates an employee from validated fields and returns it. Ids are
// allocated from firstAddedID upwards, skipping ids the seed already uses.
func (st *store) add(ctx context.Context, values map[string]string) (record, error) {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	next := int64(firstAddedID)
	var v string
	switch err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'next_id'").Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, err
	default:
		if n, perr := strconv.ParseInt(v, 10, 64); perr == nil && n > next {
			next = n
		}
	}
	for {
		if _, err := getRecord(ctx, tx, next); errors.Is(err, errNotFound) {
			break
		} else if err != nil {
			return nil, err
		}
		next++
	}
	if sup := values["supervisorEId"]; sup != "" {
		if err := checkSupervisor(ctx, tx, next, sup); err != nil {
			return nil, err
		}
	}
	rec := record{}
	for _, c := range storedColumns() {
		rec[c] = values[c]
	}
	rec["id"] = strconv.FormatInt(next, 10)
	if rec["employeeNumber"] == "" {
		rec["employeeNumber"] = rec["id"]
	}
	if rec["status"] == "" {
		rec["status"] = "Active"
	}
	rec["lastChanged"] = st.nextLastChanged("")
	if err := insertRecord(ctx, tx, rec); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO meta(key, value) VALUES('next_id', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
		strconv.FormatInt(next+1, 10)); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return rec, nil
}

func insertRecord(ctx context.Context, tx *sql.Tx, rec record) error {
	cols := allColumns()
	quoted := make([]string, len(cols))
	marks := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
		marks[i] = "?"
		args[i] = rec[c]
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO employees ("+strings.Join(quoted, ", ")+") VALUES ("+strings.Join(marks, ", ")+")", args...)
	return err
}

// seedFile is the JSON form of testdata/hris/seed.json.
type seedFile struct {
	Employees []map[string]string `json:"employees"`
}

// relativeDateRE matches the seed-only date form "@today", "@today+14d" or
// "@today-3d", resolved when the seed is loaded so that a pending hire stays
// in the future however old the seed file is.
var relativeDateRE = regexp.MustCompile(`^@today(?:([+-])([0-9]{1,5})d)?$`)

// seed loads path into an empty database; a database that holds any employee
// is left alone, so restarts never undo changes made through the API.
func (st *store) seed(ctx context.Context, path string) (int, error) {
	var n int
	if err := st.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM employees").Scan(&n); err != nil {
		return 0, err
	}
	if n > 0 {
		return 0, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var sf seedFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	today := st.now().UTC().Truncate(24 * time.Hour)
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	ids := map[string]bool{}
	for i, e := range sf.Employees {
		id := e["id"]
		if !idRE.MatchString(id) || ids[id] {
			return 0, fmt.Errorf("seed employee %d: id %q is missing, invalid or duplicate", i, id)
		}
		ids[id] = true
		rec := record{"id": id}
		for name, v := range e {
			if name == "id" {
				continue
			}
			if m := relativeDateRE.FindStringSubmatch(v); m != nil {
				days, _ := strconv.Atoi(m[2])
				if m[1] == "-" {
					days = -days
				}
				v = today.AddDate(0, 0, days).Format(dateLayout)
			}
			if err := checkWrite(name, v); err != nil {
				return 0, fmt.Errorf("seed employee %s: %v", id, err)
			}
			rec[name] = v
		}
		if rec["firstName"] == "" || rec["lastName"] == "" {
			return 0, fmt.Errorf("seed employee %s: firstName and lastName are required", id)
		}
		if rec["employeeNumber"] == "" {
			rec["employeeNumber"] = id
		}
		if rec["status"] == "" {
			rec["status"] = "Active"
		}
		rec["lastChanged"] = st.nextLastChanged("")
		if err := insertRecord(ctx, tx, rec); err != nil {
			return 0, fmt.Errorf("seed employee %s: %w", id, err)
		}
	}
	for _, e := range sf.Employees {
		if sup := e["supervisorEId"]; sup != "" && (!ids[sup] || sup == e["id"]) {
			return 0, fmt.Errorf("seed employee %s: supervisorEId %s is not another seeded employee", e["id"], sup)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return len(sf.Employees), nil
}

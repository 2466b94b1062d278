// Package reliability is Joinery's reliability suite: it breaks a private
// stack (its own Temporal, Vault, slapd, HRIS and Mailpit on free ports,
// and the worker as a separate process) right after each side effect —
// through fault-injecting proxies in front of LDAP, Vault and the HRIS that
// let a write reach the server and kill -9 the worker before the answer
// gets back — and then audits the real servers (LDAP search, Vault API,
// HRIS API) for duplicates and orphans, independently of the product's own
// view.
//
// The bounded subset runs with `go test ./internal/reliability/` (part of
// `make test`); `make reliability` runs the full suite with the
// `reliability` build tag and 200 joiners.
package reliability

package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

const (
	// CostLimit bounds the work one CEL expression may do per evaluation.
	// Conditions are short predicates over a handful of strings; anything
	// near this limit is a mistake (or an attack through a policy file).
	CostLimit = 10_000
	// maxExprLen caps the source length of one expression.
	maxExprLen = 4096
	// maxFieldLen caps every Worker field; it also feeds the static cost
	// estimate, which needs an upper bound on string sizes.
	maxFieldLen = 256
)

// newCELEnv builds the environment shared by every expression of one policy:
// a single variable `worker` of type map(string, string), the standard
// library and the strings extension. Nothing in it reads the clock or
// randomness, so evaluation is deterministic.
func newCELEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("worker", cel.MapType(cel.StringType, cel.StringType)),
		ext.Strings(),
		cel.ParserRecursionLimit(64),
		cel.ParserExpressionSizeLimit(maxExprLen),
	)
}

// program is one compiled expression with its source, kept for the audit
// record (Grant.Condition) and for error messages.
type program struct {
	path string
	text string
	prg  cel.Program
}

// compile type-checks text, requires the given output type, checks every
// worker field reference and the static cost, and returns a program bounded
// by CostLimit. All problems are reported, each prefixed with path.
func compile(env *cel.Env, path, text string, want *cel.Type) (*program, error) {
	if text == "" {
		return nil, policyErr(path, "empty expression")
	}
	if len(text) > maxExprLen {
		return nil, policyErr(path, "expression is %d bytes long; the limit is %d", len(text), maxExprLen)
	}
	ast, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			errs = append(errs, policyErr(path, "%s%s", e.Message, location(e.Location.Line(), e.Location.Column())))
		}
		return nil, errors.Join(errs...)
	}
	if errs := checkReferences(ast.NativeRep()); len(errs) > 0 {
		for i, e := range errs {
			errs[i] = policyErr(path, "%s", e)
		}
		return nil, errors.Join(errs...)
	}
	if got := ast.OutputType(); !got.IsExactType(want) {
		return nil, policyErr(path, "must be a %s expression, but it has type %s", cel.FormatCELType(want), cel.FormatCELType(got))
	}
	est, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, policyErr(path, "cannot estimate cost: %v", err)
	}
	if est.Max > CostLimit {
		return nil, policyErr(path, "estimated worst-case cost %d exceeds the limit %d", est.Max, CostLimit)
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit))
	if err != nil {
		return nil, policyErr(path, "%v", err)
	}
	return &program{path: path, text: text, prg: prg}, nil
}

func location(line, col int) string {
	if line <= 1 {
		return fmt.Sprintf(" (column %d)", col+1)
	}
	return fmt.Sprintf(" (line %d, column %d)", line, col+1)
}

// checkReferences walks the checked AST. CEL accepts any key on a map, so
// without this `worker.dept` would compile and silently be an error at
// runtime; here it is rejected up front. `worker` may only be used to read
// one constant field (`worker.x`, `worker["x"]`, `has(worker.x)`,
// `"x" in worker`): anything else (iterating it, size(worker), passing it
// around) could depend on map order or escape the field check. For the same
// reason comprehensions over any map are refused: their order is not defined.
func checkReferences(a *celast.AST) []error {
	var errs []error
	allowed := map[int64]bool{} // ids of `worker` idents used in an accepted way
	root := celast.NavigateAST(a)
	field := func(name string, at string) {
		if !isWorkerField(name) {
			msg := fmt.Sprintf("undeclared reference to 'worker.%s'%s", name, at)
			if s := suggest(name, WorkerFieldNames()); s != "" {
				msg += fmt.Sprintf("; did you mean 'worker.%s'?", s)
			}
			errs = append(errs, errors.New(msg))
		}
	}
	isWorker := func(e celast.Expr) bool {
		return e.Kind() == celast.IdentKind && e.AsIdent() == "worker"
	}
	constString := func(e celast.Expr) (string, bool) {
		if e.Kind() != celast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().(types.String)
		return string(s), ok
	}
	at := func(id int64) string {
		loc := a.SourceInfo().GetStartLocation(id)
		return location(loc.Line(), loc.Column())
	}
	for _, n := range celast.MatchDescendants(root, celast.AllMatcher()) {
		switch n.Kind() {
		case celast.SelectKind:
			sel := n.AsSelect()
			if isWorker(sel.Operand()) {
				allowed[sel.Operand().ID()] = true
				field(sel.FieldName(), at(n.ID()))
			}
		case celast.CallKind:
			call := n.AsCall()
			args := call.Args()
			switch {
			case call.FunctionName() == operators.Index && len(args) == 2 && isWorker(args[0]):
				if s, ok := constString(args[1]); ok {
					allowed[args[0].ID()] = true
					field(s, at(n.ID()))
				}
			case call.FunctionName() == operators.In && len(args) == 2 && isWorker(args[1]):
				if s, ok := constString(args[0]); ok {
					allowed[args[1].ID()] = true
					field(s, at(n.ID()))
				}
			}
		case celast.ComprehensionKind:
			rng := n.AsComprehension().IterRange()
			if t := a.GetType(rng.ID()); t != nil && t.Kind() == types.MapKind {
				allowed[rng.ID()] = true // one message is enough
				errs = append(errs, errors.New("iterating over a map is not allowed: its order is not deterministic"+at(n.ID())))
			}
		}
	}
	for _, n := range celast.MatchDescendants(root, celast.KindMatcher(celast.IdentKind)) {
		if n.AsIdent() == "worker" && !allowed[n.ID()] {
			errs = append(errs, errors.New("'worker' may only be used to read a named field, e.g. worker.department"+at(n.ID())))
		}
	}
	return errs
}

// suggest returns the candidate closest to name if it is plausibly a typo.
func suggest(name string, candidates []string) string {
	best, bestD := "", 4
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	// A prefix ("dept" for "department") is a typo too, however far.
	if best == "" {
		for _, c := range candidates {
			if len(name) >= 3 && len(c) > len(name) && c[:len(name)] == name {
				return c
			}
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sizeEstimator tells CEL's static cost estimator how big `worker` and its
// strings can be (Plan rejects longer fields before evaluating anything), so
// Parse can refuse expressions whose worst case exceeds CostLimit.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if p := n.Path(); len(p) > 0 && p[0] == "worker" {
		if len(p) == 1 {
			return &checker.SizeEstimate{Min: uint64(len(workerFields)), Max: uint64(len(workerFields))}
		}
		return &checker.SizeEstimate{Min: 0, Max: maxFieldLen}
	}
	if n.Type() != nil && slices.Contains([]types.Kind{types.StringKind, types.BytesKind}, n.Type().Kind()) {
		return &checker.SizeEstimate{Min: 0, Max: maxFieldLen}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// evalBool runs a bool program against the worker's field map.
func (p *program) evalBool(vars map[string]any) (bool, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return false, policyErr(p.path, "evaluation failed: %v", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, policyErr(p.path, "evaluated to %T, not bool", out.Value())
	}
	return b, nil
}

// evalString runs a string program against the worker's field map.
func (p *program) evalString(vars map[string]any) (string, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return "", policyErr(p.path, "evaluation failed: %v", err)
	}
	s, ok := out.Value().(string)
	if !ok {
		return "", policyErr(p.path, "evaluated to %T, not string", out.Value())
	}
	return s, nil
}

package proficienthmac

import (
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// refusalConstructors make an apiError from a reason code given as their first argument.
var refusalConstructors = []string{"badRequest", "unauthenticated", "credentialMissing", "appCheckRefused",
	"permissionDenied", "unavailable", "internalError"}

// TestReasonCodes: every reason code the function can log is in reasonCodes, and every code
// there is one it can log (read from the production code: a refusal constructor's first
// argument, an apiError's reason, a code set on the outcome); docs/logs.md lists exactly them,
// and a code the other documents name is one of them.
func TestReasonCodes(t *testing.T) {
	listed := map[string]bool{}
	for _, r := range reasonCodes {
		if listed[r.code] || r.meaning == "" {
			t.Errorf("reason %q: listed twice or without a meaning", r.code)
		}
		listed[r.code] = true
	}
	used := usedReasonCodes(t)
	for code := range used {
		if !listed[code] {
			t.Errorf("reason %q is logged (%s) but not in reasonCodes", code, used[code])
		}
	}
	for code := range listed {
		if used[code] == "" {
			t.Errorf("reason %q is in reasonCodes but nothing logs it", code)
		}
	}

	var table strings.Builder
	table.WriteString("| reason | meaning |\n| --- | --- |\n")
	for _, r := range reasonCodes {
		table.WriteString("| `" + r.code + "` | " + r.meaning + " |\n")
	}
	page, err := os.ReadFile("docs/logs.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), table.String()) {
		t.Errorf("docs/logs.md does not hold the reason codes as listed; its table should read:\n%s", table.String())
	}

	// Other names written like codes in the documents, which are not reason codes.
	notReasons := map[string]bool{"user_id": true, "auth_time": true, "sign_in_provider": true, "sign_in_second_factor": true,
		"invalid_token": true, "trace_sampled": true, "alg_none": true}
	codeLike := regexp.MustCompile("`([a-z]+(?:_[a-z]+)+)`")
	docs, _ := filepath.Glob("docs/*.md")
	for _, name := range append([]string{"README.md", "SECURITY.md"}, docs...) {
		text, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeLike.FindAllStringSubmatch(string(text), -1) {
			if !listed[m[1]] && !notReasons[m[1]] {
				t.Errorf("%s names %q, which is no reason code (nor in this test's list of other names)", name, m[1])
			}
		}
	}
}

// usedReasonCodes finds the reason codes in the package's production code, each with where.
func usedReasonCodes(t *testing.T) map[string]string {
	t.Helper()
	fset, files := productionFiles(t)
	used := map[string]string{}
	literal := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			code, _ := strconv.Unquote(lit.Value)
			used[code] = fset.Position(lit.Pos()).String()
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if fn, ok := n.Fun.(*ast.Ident); ok && slices.Contains(refusalConstructors, fn.Name) && len(n.Args) > 0 {
					literal(n.Args[0])
				}
			case *ast.KeyValueExpr:
				if key, ok := n.Key.(*ast.Ident); ok && key.Name == "reason" {
					literal(n.Value)
				}
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "reason" && i < len(n.Rhs) {
						literal(n.Rhs[i])
					}
				}
			}
			return true
		})
	}
	return used
}

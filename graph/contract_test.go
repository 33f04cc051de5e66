package graph_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// contractPath is the project's copy of the public contract of R-API-1, relative to this
// package; specPath is the specification's own, beside SPEC.md, when the repository is checked
// out next to it.
const (
	contractPath = "../api/schema.graphql"
	specPath     = "../../shared/api/schema.graphql"
)

// mustLoadSchema parses and validates GraphQL SDL files into one schema.
func mustLoadSchema(tb testing.TB, files ...string) *ast.Schema {
	tb.Helper()
	var sources []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			tb.Fatalf("schema file %s is missing (relative to graph/)", f)
		}
		if err != nil {
			tb.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: f, Input: string(b)})
	}
	s, err := gqlparser.LoadSchema(sources...)
	if err != nil {
		tb.Fatalf("parsing %v: %v", files, err)
	}
	return s
}

// mustComposedSchema loads graph/schema/*.graphqls, the schema gqlgen generates from.
func mustComposedSchema(tb testing.TB) *ast.Schema {
	tb.Helper()
	files, err := filepath.Glob("schema/*.graphqls")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no schema/*.graphqls files (%v)", err)
	}
	return mustLoadSchema(tb, files...)
}

// TestSchemaHoldsTheContract: R-API-1 — every type, field, argument (type and default) and
// enum value of the contract exists identically in the composed schema; ours may add.
func TestSchemaHoldsTheContract(t *testing.T) {
	t.Parallel()
	contract := mustLoadSchema(t, contractPath)
	ours := mustComposedSchema(t)
	if n := len(userTypes(contract)); n < 30 {
		t.Fatalf("the contract parsed into only %d types; is %s the right file?", n, contractPath)
	}
	for _, p := range contractProblems(contract, ours) {
		t.Error(p)
	}
}

// TestContractCopyIsTheSpecifications: the project's api/schema.graphql is the specification's,
// byte for byte, whenever the specification is checked out beside the repository (a clone on
// its own has only the copy, and this test then has nothing to compare).
func TestContractCopyIsTheSpecifications(t *testing.T) {
	t.Parallel()
	spec, err := os.ReadFile(specPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("no specification at %s: only the project's copy is checked", specPath)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(ours) != string(spec) {
		t.Fatalf("%s differs from the specification's %s: copy it over (cp %s %s)", contractPath, specPath, specPath, contractPath)
	}
}

// TestContractCheckCatchesBreaks feeds the check a schema that breaks the contract in each way
// it looks for, so a passing contract test means something.
func TestContractCheckCatchesBreaks(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatalf("reading the contract %s: %v", contractPath, err)
	}
	contract := mustLoadSchema(t, contractPath)
	breaks := []struct {
		name, old, new, want string
	}{
		{"removed enum value", "  ACCOUNTANT\n  WORKER\n}", "  ACCOUNTANT\n}", "enum Role lacks value WORKER"},
		{"renamed field", "  fullName: String!\n  email: String!\n  role: Role!", "  name: String!\n  email: String!\n  role: Role!", "Account.fullName is missing"},
		{"retyped field", "  reassigned: Int!", "  reassigned: Int", "ShuffleResult.reassigned has type Int, want Int!"},
		{"retyped argument", "completeTask(id: ID!)", "completeTask(id: String!)", "Mutation.completeTask(id:) has type String!, want ID!"},
		{"removed argument", "  myTasks(first: Int, after: String, status: TaskStatus)", "  myTasks(first: Int, after: String)", "Query.myTasks(status:) is missing"},
		{"new required argument", "  shuffleTasks: ShuffleResult!", "  shuffleTasks(dryRun: Boolean!): ShuffleResult!", "Mutation.shuffleTasks(dryRun:) is added as required"},
		{"changed default", "payments(first: Int)", "payments(first: Int = 5)", "BillingAccount.payments(first:) has default 5, want none"},
		{"removed type", "type ShuffleResult {", "type ShuffleOutcome {", "type ShuffleResult is missing"},
		{"removed scalar", "scalar Money\n", "", "type Money is missing"},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			src := string(raw)
			if !strings.Contains(src, b.old) {
				t.Fatalf("the contract no longer contains %q; update this test", b.old)
			}
			src = strings.Replace(src, b.old, b.new, 1)
			if b.name == "removed type" {
				src = strings.ReplaceAll(src, "ShuffleResult!", "ShuffleOutcome!")
			}
			if b.name == "removed scalar" {
				src += "\nscalar Money2\n"
				src = strings.ReplaceAll(src, "Money!", "Money2!")
			}
			broken, gerr := gqlparser.LoadSchema(&ast.Source{Name: "broken.graphql", Input: src})
			if gerr != nil {
				t.Fatalf("the broken schema does not parse: %v", gerr)
			}
			problems := contractProblems(contract, broken)
			found := false
			for _, p := range problems {
				if strings.Contains(p, b.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("the check missed %q; it reported %v", b.want, problems)
			}
		})
	}
	if p := contractProblems(contract, contract); len(p) != 0 {
		t.Fatalf("the contract does not hold itself: %v", p)
	}
}

// userTypes returns the names of the schema's own types (no built-ins).
func userTypes(s *ast.Schema) []string {
	var out []string
	for name, d := range s.Types {
		if !d.BuiltIn && !strings.HasPrefix(name, "__") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// contractProblems lists every way ours fails to hold the contract.
func contractProblems(contract, ours *ast.Schema) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	for _, root := range []struct {
		name      string
		want, got *ast.Definition
	}{{"query", contract.Query, ours.Query}, {"mutation", contract.Mutation, ours.Mutation}, {"subscription", contract.Subscription, ours.Subscription}} {
		switch {
		case root.want == nil:
		case root.got == nil:
			add("the schema has no %s type", root.name)
		case root.got.Name != root.want.Name:
			add("the %s type is %s, want %s", root.name, root.got.Name, root.want.Name)
		}
	}

	for _, name := range userTypes(contract) {
		want := contract.Types[name]
		got, ok := ours.Types[name]
		if !ok {
			add("type %s is missing", name)
			continue
		}
		if got.Kind != want.Kind {
			add("type %s is %s, want %s", name, got.Kind, want.Kind)
			continue
		}
		switch want.Kind {
		case ast.Enum:
			for _, v := range want.EnumValues {
				if got.EnumValues.ForName(v.Name) == nil {
					add("enum %s lacks value %s", name, v.Name)
				}
			}
		case ast.Union:
			for _, member := range want.Types {
				if !contains(got.Types, member) {
					add("union %s lacks member %s", name, member)
				}
			}
		case ast.Object, ast.Interface, ast.InputObject:
			for _, i := range want.Interfaces {
				if !contains(got.Interfaces, i) {
					add("type %s does not implement %s", name, i)
				}
			}
			problems = append(problems, fieldProblems(name, want, got)...)
		}
	}
	return problems
}

func fieldProblems(typeName string, want, got *ast.Definition) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, wf := range want.Fields {
		gf := got.Fields.ForName(wf.Name)
		if gf == nil {
			add("%s.%s is missing", typeName, wf.Name)
			continue
		}
		if gf.Type.String() != wf.Type.String() {
			add("%s.%s has type %s, want %s", typeName, wf.Name, gf.Type, wf.Type)
		}
		if d, w := valueString(gf.DefaultValue), valueString(wf.DefaultValue); d != w {
			add("%s.%s has default %s, want %s", typeName, wf.Name, d, w)
		}
		for _, wa := range wf.Arguments {
			ga := gf.Arguments.ForName(wa.Name)
			if ga == nil {
				add("%s.%s(%s:) is missing", typeName, wf.Name, wa.Name)
				continue
			}
			if ga.Type.String() != wa.Type.String() {
				add("%s.%s(%s:) has type %s, want %s", typeName, wf.Name, wa.Name, ga.Type, wa.Type)
			}
			if d, w := valueString(ga.DefaultValue), valueString(wa.DefaultValue); d != w {
				add("%s.%s(%s:) has default %s, want %s", typeName, wf.Name, wa.Name, d, w)
			}
		}
		// Arguments ours adds must be optional, or existing clients' calls break.
		for _, ga := range gf.Arguments {
			if wf.Arguments.ForName(ga.Name) == nil && ga.Type.NonNull && ga.DefaultValue == nil {
				add("%s.%s(%s:) is added as required", typeName, wf.Name, ga.Name)
			}
		}
	}
	// Input fields ours adds must be optional too.
	if want.Kind == ast.InputObject {
		for _, gf := range got.Fields {
			if want.Fields.ForName(gf.Name) == nil && gf.Type.NonNull && gf.DefaultValue == nil {
				add("input %s.%s is added as required", typeName, gf.Name)
			}
		}
	}
	return problems
}

func valueString(v *ast.Value) string {
	if v == nil {
		return "none"
	}
	return v.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

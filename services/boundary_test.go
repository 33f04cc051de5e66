package services_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/uberpopug/ates/"

// contexts are the bounded contexts; each may use only its own Ent package and the shared
// platform, never another context (STYLE.md, issue "storage per context").
var contexts = []string{"auth", "tasks", "accounting", "analytics"}

// violations returns the imports a package of context ctx must not have.
func violations(ctx string, imports []string) []string {
	var bad []string
	for _, imp := range imports {
		for _, other := range contexts {
			if other == ctx {
				continue
			}
			if imp == module+"services/"+other || strings.HasPrefix(imp, module+"services/"+other+"/") ||
				imp == module+"ent/"+other+"db" || strings.HasPrefix(imp, module+"ent/"+other+"db/") {
				bad = append(bad, imp)
			}
		}
		if strings.HasPrefix(imp, module+"graph") || strings.HasPrefix(imp, module+"cmd") ||
			strings.HasPrefix(imp, "github.com/99designs/gqlgen") || imp == "net/http" {
			bad = append(bad, imp)
		}
	}
	return bad
}

func TestViolationsDetectsCrossContextImports(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ctx     string
		imports []string
		want    int
	}{
		{"tasks", []string{module + "ent/tasksdb", module + "services/outbox", "context"}, 0},
		{"tasks", []string{module + "ent/accountingdb"}, 1},
		{"tasks", []string{module + "ent/authdb/account"}, 1},
		{"accounting", []string{module + "services/tasks"}, 1},
		{"analytics", []string{"github.com/99designs/gqlgen/graphql", module + "graph/model"}, 2},
		{"auth", []string{"net/http"}, 1},
	}
	for _, c := range cases {
		if got := violations(c.ctx, c.imports); len(got) != c.want {
			t.Errorf("violations(%s, %v) = %v, want %d", c.ctx, c.imports, got, c.want)
		}
	}
}

// TestContextsImportOnlyThemselves parses every Go file of every context package.
func TestContextsImportOnlyThemselves(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, ctx := range contexts {
		dir := ctx
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			continue // a context not built yet
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			var imports []string
			for _, s := range f.Imports {
				p, _ := strconv.Unquote(s.Path.Value)
				imports = append(imports, p)
			}
			for _, bad := range violations(ctx, imports) {
				t.Errorf("%s imports %s: contexts talk only through events", path, bad)
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no context source files found")
	}
}

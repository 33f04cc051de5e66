package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/uberpopug/ates/services/errs"
)

// DocumentLimits bound what one GraphQL document may ask for, checked on the parsed document
// before it is validated (R-SEC-2). Validation has steps that grow faster than the document —
// the rule that overlapping fields can be merged compares every pair of fields sharing a
// response path, and walks that expand fragment spreads double with every level of a
// fragment that spreads another twice — so a request of a few kilobytes could otherwise buy
// minutes of CPU. Every count here is taken in one pass whose cost is linear in the document:
// fragments are measured once each and expanded by multiplication, never by walking them again.
type DocumentLimits struct {
	// Tokens bounds the lexical tokens of the document (the parser stops at the limit).
	Tokens int
	// Fields bounds the fields of the document with every fragment spread expanded where it is
	// spread, summed over its operations and fragment definitions.
	Fields int
	// Spreads bounds the fragment spreads, counted expanded as Fields.
	Spreads int
	// Aliases bounds the aliased fields, counted expanded.
	Aliases int
	// Directives bounds the directives written in the document.
	Directives int
	// Repeats bounds how many fields of an operation share one response path (the same response
	// name under the same parent path), fragments expanded: the merging rule compares such
	// fields pairwise.
	Repeats int
	// Depth bounds field nesting, fragments expanded; introspection fields are not counted.
	Depth int
	// Once names the root mutation fields a document may ask for at most once: each costs a
	// password hash or a session's rotation, so aliases must not multiply them.
	Once []string
}

// DefaultDocumentLimits are generous for any client of the contract (GraphiQL's introspection
// query included) and small enough that a document within them costs milliseconds to validate.
var DefaultDocumentLimits = DocumentLimits{
	Tokens: 10_000, Fields: 2_000, Spreads: 200, Aliases: 100, Directives: 50, Repeats: 10, Depth: 12,
	Once: []string{"login", "signUp", "changePassword", "refreshSession"},
}

func (l DocumentLimits) withDefaults() DocumentLimits {
	d := DefaultDocumentLimits
	if l.Tokens <= 0 {
		l.Tokens = d.Tokens
	}
	if l.Fields <= 0 {
		l.Fields = d.Fields
	}
	if l.Spreads <= 0 {
		l.Spreads = d.Spreads
	}
	if l.Aliases <= 0 {
		l.Aliases = d.Aliases
	}
	if l.Directives <= 0 {
		l.Directives = d.Directives
	}
	if l.Repeats <= 0 {
		l.Repeats = d.Repeats
	}
	if l.Depth <= 0 {
		l.Depth = d.Depth
	}
	if l.Once == nil {
		l.Once = d.Once
	}
	return l
}

// CheckDocument parses a document within the token limit and checks it against every other
// limit, without validating it against the schema. The error, if any, is BAD_USER_INPUT and
// says which limit the document exceeds; a document that does not parse passes, for the
// executor's parser to report where it is wrong.
func (l DocumentLimits) CheckDocument(query string) error {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, l.Tokens)
	if err != nil {
		if strings.Contains(err.Error(), "exceeded token limit") {
			return limitError("the document has more than %d tokens", l.Tokens)
		}
		return nil // a syntax error: gqlgen's parser reports it, with its position
	}
	return l.check(doc)
}

// docSize is what a selection set, or a fragment, costs once its spreads are expanded.
type docSize struct {
	fields, spreads, aliases int
	once                     map[string]int // root fields that may come once, by name
}

func (s *docSize) add(o docSize, times int) {
	s.fields += o.fields * times
	s.spreads += o.spreads * times
	s.aliases += o.aliases * times
	for k, v := range o.once {
		if s.once == nil {
			s.once = map[string]int{}
		}
		s.once[k] += v * times
	}
}

// exceeds caps a count: counts are compared to limits and must not overflow on the way.
const exceeds = 1 << 40

func (s *docSize) capped() {
	s.fields, s.spreads, s.aliases = min(s.fields, exceeds), min(s.spreads, exceeds), min(s.aliases, exceeds)
	for k, v := range s.once {
		s.once[k] = min(v, exceeds)
	}
}

// sizer measures selection sets, each fragment once.
type sizer struct {
	doc      *ast.QueryDocument
	frags    map[string]*ast.FragmentDefinition
	measured map[string]docSize
	visiting map[string]bool
	once     map[string]bool
}

// size measures a selection set; root tells whether it is an operation's own set (where the
// fields of Once are counted).
func (z *sizer) size(set ast.SelectionSet, root bool) docSize {
	var s docSize
	for _, sel := range set {
		switch v := sel.(type) {
		case *ast.Field:
			s.fields++
			if v.Alias != "" && v.Alias != v.Name {
				s.aliases++
			}
			if root && z.once[v.Name] {
				s.add(docSize{once: map[string]int{v.Name: 1}}, 1)
			}
			s.add(z.size(v.SelectionSet, false), 1)
		case *ast.InlineFragment:
			s.add(z.size(v.SelectionSet, root), 1)
		case *ast.FragmentSpread:
			s.spreads++
			s.add(z.fragment(v.Name, root), 1)
		}
		s.capped()
	}
	return s
}

// fragment measures a named fragment once (twice when spread both at an operation's root and
// below it); an unknown or cyclic fragment counts as empty here and is refused by validation.
func (z *sizer) fragment(name string, root bool) docSize {
	key := name
	if root {
		key = "\x00" + name
	}
	if s, ok := z.measured[key]; ok {
		return s
	}
	f, ok := z.frags[name]
	if !ok || z.visiting[key] {
		return docSize{}
	}
	z.visiting[key] = true
	s := z.size(f.SelectionSet, root)
	delete(z.visiting, key)
	z.measured[key] = s
	return s
}

func (l DocumentLimits) check(doc *ast.QueryDocument) error {
	if n := countDirectives(doc); n > l.Directives {
		return limitError("the document has %d directives; at most %d are allowed", n, l.Directives)
	}
	z := &sizer{doc: doc, frags: map[string]*ast.FragmentDefinition{}, measured: map[string]docSize{},
		visiting: map[string]bool{}, once: map[string]bool{}}
	for _, name := range l.Once {
		z.once[name] = true
	}
	for _, f := range doc.Fragments {
		if _, dup := z.frags[f.Name]; !dup {
			z.frags[f.Name] = f
		}
	}
	var total docSize
	for _, op := range doc.Operations {
		total.add(z.size(op.SelectionSet, op.Operation == ast.Mutation), 1)
		total.capped()
	}
	for _, f := range doc.Fragments {
		total.add(z.size(f.SelectionSet, false), 1) // validated on its own as well
		total.capped()
	}
	switch {
	case total.fields > l.Fields:
		return limitError("the document asks for %s fields once its fragments are expanded; at most %d are allowed", count(total.fields), l.Fields)
	case total.spreads > l.Spreads:
		return limitError("the document spreads fragments %s times once expanded; at most %d are allowed", count(total.spreads), l.Spreads)
	case total.aliases > l.Aliases:
		return limitError("the document has %s aliased fields once its fragments are expanded; at most %d are allowed", count(total.aliases), l.Aliases)
	}
	for _, name := range l.Once {
		if n := total.once[name]; n > 1 {
			return limitError("the document asks for %s %s times; at most once per request is allowed", name, count(n))
		}
	}
	// Within these bounds the document can be walked expanded: at most Fields steps.
	for _, op := range doc.Operations {
		w := pathWalker{frags: z.frags, limits: l, visiting: map[string]bool{}}
		if err := w.walk(op.SelectionSet, &pathNode{}, 0); err != nil {
			return err
		}
	}
	return nil
}

func count(n int) string {
	if n >= exceeds {
		return "more than a trillion"
	}
	return fmt.Sprint(n)
}

// pathNode is one response path of an operation: how many fields land on it, and its children.
type pathNode struct {
	fields   int
	children map[string]*pathNode
}

// pathWalker walks an operation with its fragments expanded, counting fields per response path
// and the depth.
type pathWalker struct {
	frags    map[string]*ast.FragmentDefinition
	limits   DocumentLimits
	visiting map[string]bool
}

// walk counts the fields of set at the response path at, depth fields deep. Introspection
// fields (__schema, __type) and what they select count toward repeats but not toward the depth:
// introspection is limited by who may use it (R-API-3), and its standard query is deep.
func (w *pathWalker) walk(set ast.SelectionSet, at *pathNode, depth int) error {
	for _, sel := range set {
		switch v := sel.(type) {
		case *ast.Field:
			next := depth
			if depth >= 0 && !strings.HasPrefix(v.Name, "__") {
				next = depth + 1
				if next > w.limits.Depth {
					return limitError("the operation is more than %d fields deep", w.limits.Depth)
				}
			} else if v.Name != "__typename" {
				next = -1 // below introspection: depth not counted
			}
			name := v.Alias
			if name == "" {
				name = v.Name
			}
			if at.children == nil {
				at.children = map[string]*pathNode{}
			}
			child := at.children[name]
			if child == nil {
				child = &pathNode{}
				at.children[name] = child
			}
			child.fields++
			if child.fields > w.limits.Repeats {
				return limitError("the operation asks for %q more than %d times at one place; ask once", name, w.limits.Repeats)
			}
			if err := w.walk(v.SelectionSet, child, next); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := w.walk(v.SelectionSet, at, depth); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			f, ok := w.frags[v.Name]
			if !ok || w.visiting[v.Name] {
				continue // refused by validation
			}
			w.visiting[v.Name] = true
			err := w.walk(f.SelectionSet, at, depth)
			delete(w.visiting, v.Name)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// countDirectives counts every directive written in the document.
func countDirectives(doc *ast.QueryDocument) int {
	n := 0
	var inSet func(ast.SelectionSet)
	inSet = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch v := sel.(type) {
			case *ast.Field:
				n += len(v.Directives)
				inSet(v.SelectionSet)
			case *ast.InlineFragment:
				n += len(v.Directives)
				inSet(v.SelectionSet)
			case *ast.FragmentSpread:
				n += len(v.Directives)
			}
		}
	}
	for _, op := range doc.Operations {
		n += len(op.Directives)
		for _, v := range op.VariableDefinitions {
			n += len(v.Directives)
		}
		inSet(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n += len(f.Directives)
		inSet(f.SelectionSet)
	}
	return n
}

// limitError is the BAD_USER_INPUT answer of a document over a limit.
func limitError(format string, args ...any) error {
	return errs.E(errs.Invalid, format, args...)
}

// documentGuard is the gqlgen extension that checks each new document against the limits
// before gqlgen parses and validates it (R-SEC-2). A document already in the query cache was
// checked when it entered it.
type documentGuard struct {
	limits DocumentLimits
	cache  graphql.Cache[*ast.QueryDocument]
	// refused is called with the refusal (security log and metric).
	refused func(ctx context.Context, err error)
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentGuard{}

func (documentGuard) ExtensionName() string                          { return "DocumentLimits" }
func (documentGuard) Validate(schema graphql.ExecutableSchema) error { return nil }

func (g documentGuard) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if _, ok := g.cache.Get(ctx, p.Query); ok {
		return nil
	}
	err := g.limits.CheckDocument(p.Query)
	if err == nil {
		return nil
	}
	if g.refused != nil {
		g.refused(ctx, err)
	}
	e := gqlerror.Errorf("%s", err.Error())
	e.Extensions = map[string]any{"code": string(errs.Invalid)}
	return e
}

package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// introspectionPolicy allows introspection for ADMIN tokens, or for everyone in development
// mode (R-API-3).
type introspectionPolicy struct{ dev bool }

func (introspectionPolicy) ExtensionName() string                          { return "IntrospectionPolicy" }
func (introspectionPolicy) Validate(schema graphql.ExecutableSchema) error { return nil }

func (p introspectionPolicy) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	a, ok := identity.ActorFrom(ctx)
	allowed := p.dev || (ok && a.Is(identity.Admin))
	rc.DisableIntrospection = !allowed
	if !allowed && rc.Operation != nil && introspects(rc.Operation.SelectionSet) {
		e := gqlerror.Errorf("introspection is allowed for ADMIN tokens only")
		e.Extensions = map[string]any{"code": string(errs.Forbidden)}
		return e
	}
	return nil
}

// introspects reports whether a selection asks for __schema or __type at the top level.
func introspects(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && introspects(s.Definition.SelectionSet) {
				return true
			}
		}
	}
	return false
}

// bodyLimitError is the JSON body of a request refused for its size.
func bodyLimitError(limit int64) string {
	return fmt.Sprintf(`{"errors":[{"message":"the request body is larger than %d bytes","extensions":{"code":"BAD_USER_INPUT"}}]}`, limit)
}

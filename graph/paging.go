package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/uberpopug/ates/services/page"
)

// pageRequest validates a connection field's first/after (R-API-5) and asks for the list's
// total only when the client selected totalCount on it (through fragments and aliases alike):
// counting can cost more than the page itself.
func pageRequest(ctx context.Context, first *int, after *string) (page.Request, error) {
	req, err := page.Parse(first, after)
	if err != nil {
		return req, err
	}
	if graphql.HasOperationContext(ctx) && graphql.GetFieldContext(ctx) != nil {
		req.NoTotal = !selects(ctx, "totalCount")
	}
	return req, nil
}

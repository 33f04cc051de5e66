// Package graph is the GraphQL gateway (R-API-1…6): one gqlgen schema composed of the
// contexts' schema files (graph/schema), thin resolvers that decode input, call one service
// method and map the result, and the HTTP handler with its transports, limits and error
// presentation.
package graph

import (
	"log/slog"
	"time"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/tasks"
)

//go:generate go tool gqlgen generate

// Resolver holds the contexts' services the resolvers call.
type Resolver struct {
	Auth        *auth.Service
	TaskTracker *tasks.Service
	Accounting  *accounting.Service
	Analytics   *analytics.Service
	// Hub pushes balance and task board changes to subscribers (R-ACC-10, R-LIVE-1).
	Hub *Hub
	Log *slog.Logger
	// Location is the business-day timezone (ATES_TIMEZONE, R-ACC-7) and Clock the time source
	// of serverInfo; nil means UTC and time.Now.
	Location *time.Location
	Clock    func() time.Time
}

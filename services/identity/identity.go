// Package identity is the small shared kernel every context agrees on: roles and the acting
// account. It holds no behaviour beyond what the SPEC defines for roles.
package identity

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// Role is an account's single role (SPEC "Roles").
type Role string

// The four roles.
const (
	Admin      Role = "ADMIN"
	Manager    Role = "MANAGER"
	Accountant Role = "ACCOUNTANT"
	Worker     Role = "WORKER"
)

// Roles lists every role.
var Roles = []Role{Admin, Manager, Accountant, Worker}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q", s)
}

// Assignable reports whether an active account of this role may be assigned tasks (R-TASK-3).
func (r Role) Assignable() bool { return r != Admin && r != Manager }

// Actor is the authenticated account making a request.
type Actor struct {
	AccountID uuid.UUID
	Role      Role
}

// Is reports whether the actor has one of the roles.
func (a Actor) Is(roles ...Role) bool {
	for _, r := range roles {
		if a.Role == r {
			return true
		}
	}
	return false
}

type actorKey struct{}

// WithActor returns a context carrying the actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor of the context, if the request is authenticated.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

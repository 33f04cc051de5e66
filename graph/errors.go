package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/fault"
	"github.com/uberpopug/ates/services/security"
)

// presentError turns any error into a GraphQL error with extensions.code (R-API-4): coded
// errors keep their message; errors of the request itself (parse, validation, limits, input
// coercion) are BAD_USER_INPUT, without schema suggestions outside development mode (R-SEC-4);
// a temporary failure (fault.IsTransient: a database or the broker away) is UNAVAILABLE with
// retryAfter (R-REL-4); anything else is logged in full and shown as "internal error". Refused
// authorizations and cost limits are security events (R-SEC-7).
func presentError(log *slog.Logger, dev bool) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		out := graphql.DefaultErrorPresenter(ctx, err)
		if e, ok := errs.As(err); ok {
			if e.Code == errs.Forbidden {
				security.Record(ctx, log, security.Forbidden, "operation refused", "reason", e.Message, "path", out.Path.String(), "client", ClientFrom(ctx))
			}
			out.Message = e.Message
			out.Extensions = map[string]any{"code": string(e.Code)}
			if e.Field != "" {
				out.Extensions["field"] = e.Field
			}
			for k, v := range e.Meta {
				out.Extensions[k] = v
			}
			if e.Code == errs.Internal {
				log.ErrorContext(ctx, "internal error", "error", err, "path", out.Path.String())
			}
			return out
		}
		var ge *gqlerror.Error
		if errors.As(err, &ge) && ge.Err == nil {
			// The request itself is wrong: parse, validation or limits. Keep a code of ours.
			code, _ := ge.Extensions["code"].(string)
			if code == "COMPLEXITY_LIMIT_EXCEEDED" {
				security.Record(ctx, log, security.LimitExceeded, "operation refused by the complexity limit", "client", ClientFrom(ctx))
			}
			if !knownCode(code) {
				code = string(errs.Invalid)
			}
			if !dev {
				// "Did you mean …" lists names of the schema a caller may not be allowed to see.
				if i := strings.Index(out.Message, " Did you mean "); i >= 0 {
					out.Message = out.Message[:i]
				}
			}
			out.Extensions = map[string]any{"code": code}
			return out
		}
		if fault.IsTransient(ctx, err) {
			// A database or the broker is away for a moment: the client retries (R-REL-4).
			log.WarnContext(ctx, "temporary failure", "error", err, "path", out.Path.String())
			out.Message = unavailableMessage
			out.Extensions = map[string]any{"code": string(errs.Unavailable), "retryAfter": fault.RetryAfter(ctx, err)}
			return out
		}
		log.ErrorContext(ctx, "internal error", "error", err, "path", out.Path.String())
		out.Message = "internal error"
		out.Extensions = map[string]any{"code": string(errs.Internal)}
		return out
	}
}

// unavailableMessage is what a client is told of a temporary failure (R-API-4).
const unavailableMessage = "aTES is briefly unavailable; please try again in a few seconds"

// recoverPanic logs a resolver panic with its stack and answers "internal error".
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errs.E(errs.Internal, "internal error")
	}
}

func knownCode(c string) bool {
	switch errs.Code(c) {
	case errs.Invalid, errs.NotFound, errs.Conflict, errs.Forbidden, errs.Unauthenticated, errs.Internal, errs.Unavailable, errs.Resync:
		return true
	}
	return false
}

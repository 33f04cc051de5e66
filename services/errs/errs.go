// Package errs is the one error type of aTES: a code and a message a person can read (R-API-4).
// Storage maps Ent's not-found and constraint errors into it; the gateway turns the code into
// extensions.code and replaces anything without a code by "internal error".
package errs

import (
	"errors"
	"fmt"
)

// Code classifies an error; its value is the GraphQL extensions.code.
type Code string

// The codes of R-API-4.
const (
	Invalid         Code = "BAD_USER_INPUT"
	NotFound        Code = "NOT_FOUND"
	Conflict        Code = "CONFLICT"
	Forbidden       Code = "FORBIDDEN"
	Unauthenticated Code = "UNAUTHENTICATED"
	Internal        Code = "INTERNAL"
	// Unavailable is a temporary failure the client should retry (contract version 2): a
	// database or broker outage, an overloaded password hasher. Meta["retryAfter"] says when,
	// in seconds (R-API-4, R-REL-4).
	Unavailable Code = "UNAVAILABLE"
	// Resync ends a live subscription whose follower fell too far behind: the client refetches
	// and subscribes again (R-LIVE-1, R-REL-1).
	Resync Code = "RESYNC"
)

// Error is an application error with a code and a person-readable message.
type Error struct {
	Code    Code
	Message string
	// Field names the offending input field of an Invalid error, when there is one.
	Field string
	// Meta carries extra machine-readable details, e.g. retryAfter seconds.
	Meta map[string]any
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// E returns an error with the code and a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns a BAD_USER_INPUT error naming the offending field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Retryable returns an UNAVAILABLE error telling the client to retry after retryAfter seconds
// (at least 1).
func Retryable(retryAfter int, format string, args ...any) *Error {
	retryAfter = max(retryAfter, 1)
	return &Error{Code: Unavailable, Message: fmt.Sprintf(format, args...), Meta: map[string]any{"retryAfter": retryAfter}}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns the code of err: Internal for any error without one, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := As(err); ok {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries the code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

package inbox

import "errors"

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (e.g. data the handler can never
// accept): the consumer dead-letters the event at once instead of retrying (R-EVT-2, R-EVT-5).
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent (R-EVT-5).
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

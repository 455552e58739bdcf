// Package errs holds the coded errors every layer of Slipway returns. Each
// transport maps a Code to its own wire form exactly once (MLflow error_code
// names, native JSON envelopes, CLI exit codes), so domain code never thinks
// about HTTP.
package errs

import (
	"errors"
	"fmt"
)

// Code classifies an error by what the caller can do about it.
type Code int

const (
	Internal Code = iota
	InvalidArgument
	NotFound
	AlreadyExists
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	ResourceExhausted
)

func (c Code) String() string {
	switch c {
	case InvalidArgument:
		return "invalid_argument"
	case NotFound:
		return "not_found"
	case AlreadyExists:
		return "already_exists"
	case FailedPrecondition:
		return "failed_precondition"
	case PermissionDenied:
		return "permission_denied"
	case Unauthenticated:
		return "unauthenticated"
	case ResourceExhausted:
		return "resource_exhausted"
	default:
		return "internal"
	}
}

// Error is a coded error. Message is safe to show to the caller; Err, when
// set, carries internal detail that is logged but never returned.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a coded error with a formatted, caller-safe message.
func New(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid is shorthand for an InvalidArgument error.
func Invalid(format string, args ...any) error {
	return &Error{Code: InvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf is shorthand for a NotFound error.
func NotFoundf(format string, args ...any) error {
	return &Error{Code: NotFound, Message: fmt.Sprintf(format, args...)}
}

// Wrap marks err as internal; msg is what the caller sees.
func Wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: Internal, Message: msg, Err: err}
}

// CodeOf returns the code of err, Internal for uncoded errors.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// Message returns the caller-safe message of err. Uncoded errors are hidden
// behind a generic message because they may carry internal detail.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

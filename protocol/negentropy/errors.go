package negentropy

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped by every [*MessageError]: the peer sent bytes
	// that are not a valid protocol version 1 message. The session cannot
	// continue.
	ErrMalformed = errors.New("negentropy: malformed message")

	// ErrMessageTooLarge means a received message is longer than this side's
	// frame size limit: the peer ignores the limit or uses a larger one.
	ErrMessageTooLarge = errors.New("negentropy: message exceeds frame size limit")

	// ErrUnsupportedVersion means the responder answered with a protocol
	// version other than 1, asking the initiator to downgrade.
	ErrUnsupportedVersion = errors.New("negentropy: peer does not support protocol version 1")

	// ErrRole means a method was called that this side's role does not
	// allow: Initiate twice or after Reconcile, Reconcile on the initiator,
	// ReconcileInitiator on a side that did not Initiate.
	ErrRole = errors.New("negentropy: call not valid for this side's role")
)

// A MessageError reports why a received message is malformed and at which
// byte offset the offending element starts. It wraps [ErrMalformed].
type MessageError struct {
	Offset int
	Reason string
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("negentropy: malformed message at byte %d: %s", e.Offset, e.Reason)
}

func (e *MessageError) Unwrap() error { return ErrMalformed }

func malformed(offset int, format string, args ...any) *MessageError {
	return &MessageError{Offset: offset, Reason: fmt.Sprintf(format, args...)}
}

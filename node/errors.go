package node

import "errors"

// ErrPushback is returned when the node is too busy to take more work now;
// the HTTP API maps it to 503 overloaded with Retry-After.
var ErrPushback = errors.New("node: overloaded, retry later")

// ErrClosed is returned by a node that is closing or closed.
var ErrClosed = errors.New("node: closed")

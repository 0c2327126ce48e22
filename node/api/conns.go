package api

import (
	"net"
	"sync"
)

// capListener bounds the open connections of a listener, in all and per
// client address: one past either bound is closed as soon as it is
// accepted, so that one client cannot hold every file descriptor (and
// with them the node's libp2p dials) with idle connections. A bound of
// zero is no bound.
type capListener struct {
	net.Listener
	max, perClient int
	refused        func(bound string)

	mu     sync.Mutex
	open   int
	byAddr map[string]int
}

func newCapListener(ln net.Listener, max, perClient int, refused func(bound string)) *capListener {
	return &capListener{Listener: ln, max: max, perClient: perClient, refused: refused, byAddr: map[string]int{}}
}

// Accept returns the next connection within the bounds.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr().String())
		if bound := l.take(key); bound != "" {
			c.Close()
			l.refused(bound)
			continue
		}
		return &cappedConn{Conn: c, l: l, key: key}, nil
	}
}

// take counts a connection of client key, or names the bound it is over.
func (l *capListener) take(key string) (over string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return "total"
	case l.perClient > 0 && l.byAddr[key] >= l.perClient:
		return "per_client"
	}
	l.open++
	l.byAddr[key]++
	return ""
}

func (l *capListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[key]--; l.byAddr[key] <= 0 {
		delete(l.byAddr, key)
	}
}

// Open is the number of open connections.
func (l *capListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// cappedConn gives its place back when it closes, once.
type cappedConn struct {
	net.Conn
	l    *capListener
	key  string
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

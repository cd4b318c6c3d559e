// Package conn is the connection plumbing every WebSocket and streaming front
// door shares: outgoing queues written by a pool of writers (framing, raw
// socket writes, joining messages under load, dropping a slow client), and
// workers that handle incoming messages off the connection's reader.
package conn

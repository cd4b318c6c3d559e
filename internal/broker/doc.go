// Package broker owns what crosses node boundaries: delivery of publications,
// join/leave and control messages to every node's hub, channel history
// streams (offset + epoch), the index Mercure replays from, and presence.
// Memory is the single-node default; Redis and NATS connect several nodes.
package broker

// Package hub owns the channels and subscriptions of one node, whatever
// protocol its clients speak: subscribe (permission through the auth engine,
// recovery, buffering, presence, join/leave), topic-selector subscriptions,
// publish, fan-out encoded once per wire format, and control intents that
// reach the node holding a connection through the broker.
package hub

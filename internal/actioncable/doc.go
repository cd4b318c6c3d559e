// Package actioncable is Herald's Action Cable and AnyCable front door: the
// WebSocket endpoint (/cable) that @rails/actioncable, @anycable/web and
// Turbo Streams clients use unchanged, AnyCable's HTTP broadcast endpoint
// (/_broadcast), and AnyCable's RPC over HTTP to a Rails app that keeps its
// connection class and channels.
//
// It owns the wire (codec.go), the session (session.go, identify.go,
// subscribe.go, streams.go, ext.go, restore.go, deliver.go), the RPC client
// (rpc.go, rpcdecode.go, rpcsession.go) and the broadcast endpoint
// (broadcast.go). Who a connection is and what it may follow is the auth
// engine's decision (AnyCable tokens, signed stream names, the app's RPC as a
// connect authority); streams are hub channels, shared with every door.
package actioncable

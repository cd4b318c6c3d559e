// Package api is Herald's server HTTP API (POST /api/<method>), compatible with
// Centrifugo's: publish, broadcast, subscribe, unsubscribe, disconnect, refresh,
// presence, presence_stats, history, history_remove, channels, info and batch.
package api

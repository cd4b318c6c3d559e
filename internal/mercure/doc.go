// Package mercure is Herald's Mercure (draft-07) front door: topic selectors
// and their matching, SSE subscriptions, form publications, the bounded
// update history for Last-Event-ID reconnection, and the HTTP errors that explain refusals.
package mercure

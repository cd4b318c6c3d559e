// Package natscallout is Herald's NATS auth callout service: it answers the
// authorization requests a NATS server sends on $SYS.REQ.USER.AUTH, deciding
// each login with the auth engine and placing the user in an account with
// permissions from configured templates. It checks every answer as NATS will
// before sending it, so a misconfiguration is reported in Herald's words.
package natscallout

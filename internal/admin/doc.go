// Package admin serves the operator's web page under /admin: an overview of
// the node (connections by front door, channels, rates), a live feed of
// refusals, a token explainer, a channel view and a publish form, behind
// admin.key with a login form and a server-side session. Its templates,
// script and style sheet are embedded: no build step, no external assets.
package admin

// Package glob matches the simple glob patterns Herald's configuration uses for
// allowed origins and channel listings: "*" matches any run of characters
// (including none), every other character matches itself, case-sensitively.
// It is hand-written because path.Match stops "*" at "/", which origins contain.
package glob

package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// NATSCallout holds the options of the NATS auth callout service: Herald
// answers the authorization requests a NATS server sends on
// $SYS.REQ.USER.AUTH with the same auth engine as every front door.
type NATSCallout struct {
	Enabled bool   `yaml:"enabled" doc:"answer NATS auth callout requests (herald serve runs the service alongside the hub; herald nats-callout runs only it)"`
	URL     string `yaml:"url" doc:"NATS server URL(s) the callout user connects to, comma-separated"`
	Name    string `yaml:"name" doc:"connection name the callout user shows in NATS monitoring"`

	User     string `yaml:"user" doc:"user of the callout connection; it must be in the server's auth_callout.auth_users"`
	Password string `yaml:"password" doc:"password of the callout user" secret:"true"`
	Creds    string `yaml:"creds" doc:"credentials file (user JWT and seed) of the callout user, in operator mode"`
	NkeySeed string `yaml:"nkey_seed" doc:"user nkey seed (SU...) of the callout user" secret:"true"`
	Queue    string `yaml:"queue" doc:"queue group: every Herald instance with the same name shares the requests"`

	Mode          string `yaml:"mode" doc:"centralized (accounts in the server config, auth_callout.issuer) or operator (accounts are JWTs, the callout account's authorization section)"`
	IssuerSeed    string `yaml:"issuer_seed" doc:"account nkey seed (SA...) that signs the answers: the seed of auth_callout.issuer (centralized) or of the callout account or one of its signing keys (operator)" secret:"true"`
	IssuerAccount string `yaml:"issuer_account" doc:"operator mode, when issuer_seed is a signing key: the callout account's public key (A...)"`
	XKeySeed      string `yaml:"xkey_seed" doc:"curve25519 xkey seed (SX...) whose public key is the server's auth_callout.xkey: requests are decrypted and answers encrypted with it" secret:"true"`

	Account            string        `yaml:"account" doc:"account users are placed in: a name from the server config (centralized; empty = the global account $G) or an account public key (operator)"`
	AccountSigningSeed string        `yaml:"account_signing_seed" doc:"operator mode: seed of account, or of one of its signing keys, that signs the user JWTs (empty when account is the callout account)" secret:"true"`
	AccountClaim       string        `yaml:"account_claim" doc:"claim (name or dotted path) naming the account of a user, which must be account or one of accounts; empty = always account"`
	Accounts           []NATSAccount `yaml:"accounts" doc:"further accounts account_claim may name"`

	TokenSources []string        `yaml:"token_sources" doc:"connect options the client's token is read from, in order: auth_token, password, jwt"`
	Permissions  NATSPermissions `yaml:"permissions" doc:"what an accepted user may do; subjects may hold {{user}} and {{claim:NAME}}"`
	MaxExpiry    Duration        `yaml:"max_expiry" doc:"longest a NATS login lasts; it never outlives the token's exp; 0 = until the token's exp"`
	Workers      int             `yaml:"workers" doc:"requests answered at once; 0 = one per CPU"`
}

// NATSAccount is an account users may be placed in.
type NATSAccount struct {
	Name        string `yaml:"name" doc:"account name (centralized) or public key (operator)"`
	SigningSeed string `yaml:"signing_seed" doc:"operator mode: seed of the account or of one of its signing keys" secret:"true"`
}

// NATSPermissions are the templates of an accepted user's permissions.
type NATSPermissions struct {
	PublishAllow   []string `yaml:"publish_allow" doc:"subjects the user may publish to"`
	PublishDeny    []string `yaml:"publish_deny" doc:"subjects the user may not publish to"`
	SubscribeAllow []string `yaml:"subscribe_allow" doc:"subjects the user may subscribe to (a queue group after a space)"`
	SubscribeDeny  []string `yaml:"subscribe_deny" doc:"subjects the user may not subscribe to"`
	AllowResponses bool     `yaml:"allow_responses" doc:"the user may publish replies to requests it received"`
	ResponsesMax   int      `yaml:"responses_max" doc:"replies allowed per received request, with allow_responses"`
	ResponsesTTL   Duration `yaml:"responses_ttl" doc:"how long a reply stays allowed, with allow_responses; 0 = no limit"`
	Subscriptions  int      `yaml:"subscriptions" doc:"subscriptions the user may hold; 0 = no limit"`
	Payload        int      `yaml:"payload" doc:"largest message the user may publish, in bytes; 0 = the server's max_payload"`
	Data           int      `yaml:"data" doc:"bytes the user may have in flight; 0 = no limit"`
}

// NATSTokenSources are the names nats_callout.token_sources accepts.
var NATSTokenSources = []string{"auth_token", "password", "jwt"}

func defaultNATSCallout() NATSCallout {
	return NATSCallout{
		URL:          "nats://127.0.0.1:4222",
		Name:         "herald-callout",
		Queue:        "herald",
		Mode:         "centralized",
		TokenSources: []string{"auth_token"},
		Permissions:  NATSPermissions{ResponsesMax: 1},
	}
}

// Operator reports whether the callout runs in operator (decentralized) mode.
func (n *NATSCallout) Operator() bool { return n.Mode == "operator" }

// templateRE finds the placeholders of a permission template.
var templateRE = regexp.MustCompile(`\{\{[^}]*\}\}`)

// placeholderRE is what a placeholder may be.
var placeholderRE = regexp.MustCompile(`^\{\{\s*(user|claim:[^\s{}]+)\s*\}\}$`)

// seedLetters are the second letters of the seeds of each kind of key.
var seedLetters = map[nkeys.PrefixByte]string{nkeys.PrefixByteUser: "U", nkeys.PrefixByteAccount: "A", nkeys.PrefixByteCurve: "X"}

// checkSeed says what is wrong with a seed of the given kind, or "". It never
// shows the seed.
func checkSeed(seed string, want nkeys.PrefixByte, what string) string {
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(seed)))
	if err != nil {
		return fmt.Sprintf("is not an nkey seed (%v); it should start with S%s", err, seedLetters[want])
	}
	pub, err := kp.PublicKey()
	if err != nil || nkeys.Prefix(pub) != want {
		return fmt.Sprintf("is not %s seed; it should start with S%s", what, seedLetters[want])
	}
	return ""
}

// validate checks the callout options.
func (n *NATSCallout) validate() Problems {
	if !n.Enabled {
		return nil
	}
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: "nats_callout." + key, Msg: fmt.Sprintf(format, args...)})
	}
	for _, u := range strings.Split(n.URL, ",") {
		if u = strings.TrimSpace(u); !strings.Contains(u, "://") && u != "" {
			add("url", "%q has no scheme; write it as nats://%s", u, u)
		}
	}
	if strings.TrimSpace(n.URL) == "" {
		add("url", "is required (like nats://127.0.0.1:4222)")
	}
	creds := 0
	for _, set := range []bool{n.User != "", n.Creds != "", n.NkeySeed != ""} {
		if set {
			creds++
		}
	}
	if creds > 1 {
		add("user", "give one of user (with password), creds and nkey_seed for the callout user, not %d", creds)
	}
	if n.Password != "" && n.User == "" {
		add("password", "is set but user is not")
	}
	if n.NkeySeed != "" {
		if msg := checkSeed(n.NkeySeed, nkeys.PrefixByteUser, "a user"); msg != "" {
			add("nkey_seed", "%s", msg)
		}
	}
	if strings.TrimSpace(n.Queue) == "" || strings.ContainsAny(n.Queue, " \t.*>") {
		add("queue", "must be a queue group name without spaces, dots or wildcards (got %q)", n.Queue)
	}
	if n.Mode != "centralized" && n.Mode != "operator" {
		add("mode", "must be centralized or operator (got %q)", n.Mode)
	}
	if n.IssuerSeed == "" {
		add("issuer_seed", "is required: the account nkey seed (SA...) whose public key is the server's auth_callout.issuer (centralized) or the callout account (operator)")
	} else if msg := checkSeed(n.IssuerSeed, nkeys.PrefixByteAccount, "an account"); msg != "" {
		add("issuer_seed", "%s", msg)
	}
	if n.XKeySeed != "" {
		if msg := checkSeed(n.XKeySeed, nkeys.PrefixByteCurve, "a curve (xkey)"); msg != "" {
			add("xkey_seed", "%s", msg)
		}
	}
	ps = append(ps, n.validateAccounts()...)
	seen := map[string]bool{}
	for i, s := range n.TokenSources {
		key := fmt.Sprintf("token_sources[%d]", i)
		switch {
		case !oneOf(s, NATSTokenSources):
			add(key, "%q is not a NATS token source (use %s)", s, strings.Join(NATSTokenSources, ", "))
		case seen[s]:
			add(key, "%q is listed twice", s)
		}
		seen[s] = true
	}
	if len(n.TokenSources) == 0 {
		add("token_sources", "must name at least one of %s", strings.Join(NATSTokenSources, ", "))
	}
	ps = append(ps, n.Permissions.validate("nats_callout.permissions")...)
	if n.Workers < 0 {
		add("workers", "must not be negative")
	}
	if n.MaxExpiry > 0 && n.MaxExpiry < Duration(time.Second) {
		add("max_expiry", "(%s) must be at least 1s: NATS counts expiry in seconds", n.MaxExpiry)
	}
	return ps
}

// validateAccounts checks the placement options of the mode.
func (n *NATSCallout) validateAccounts() Problems {
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: "nats_callout." + key, Msg: fmt.Sprintf(format, args...)})
	}
	operator := n.Operator()
	checkAccount := func(key, name, seed, seedKey string) {
		if !operator {
			if seed != "" {
				add(seedKey, "applies to operator mode only; in centralized mode issuer_seed signs every user")
			}
			if strings.ContainsAny(name, " \t") {
				add(key, "%q must not contain spaces", name)
			}
			return
		}
		if !nkeys.IsValidPublicAccountKey(name) {
			add(key, "must be an account public key (A...) in operator mode")
		}
		if seed != "" {
			if msg := checkSeed(seed, nkeys.PrefixByteAccount, "an account"); msg != "" {
				add(seedKey, "%s", msg)
			}
		}
	}
	if operator {
		if n.Account == "" {
			add("account", "is required in operator mode: the public key (A...) of the account users are placed in")
		} else {
			checkAccount("account", n.Account, n.AccountSigningSeed, "account_signing_seed")
		}
		if n.IssuerAccount != "" && !nkeys.IsValidPublicAccountKey(n.IssuerAccount) {
			add("issuer_account", "must be an account public key (A...)")
		}
	} else {
		checkAccount("account", n.Account, n.AccountSigningSeed, "account_signing_seed")
		if n.IssuerAccount != "" {
			add("issuer_account", "applies to operator mode only")
		}
	}
	names := map[string]bool{n.Account: true}
	for i, a := range n.Accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if a.Name == "" {
			add(key+".name", "is required")
			continue
		}
		if names[a.Name] {
			add(key+".name", "%q is listed twice (account counts too)", a.Name)
		}
		names[a.Name] = true
		checkAccount(key+".name", a.Name, a.SigningSeed, key+".signing_seed")
	}
	if len(n.Accounts) > 0 && n.AccountClaim == "" {
		add("account_claim", "must name the claim that picks one of accounts")
	}
	return ps
}

// validate checks the permission templates.
func (p *NATSPermissions) validate(path string) Problems {
	var ps Problems
	for _, list := range []struct {
		key      string
		subjects []string
	}{{"publish_allow", p.PublishAllow}, {"publish_deny", p.PublishDeny}, {"subscribe_allow", p.SubscribeAllow}, {"subscribe_deny", p.SubscribeDeny}} {
		for i, s := range list.subjects {
			if msg := CheckSubjectTemplate(s); msg != "" {
				ps = append(ps, Problem{Key: fmt.Sprintf("%s.%s[%d]", path, list.key, i), Msg: msg})
			}
		}
	}
	if p.AllowResponses && p.ResponsesMax < 1 {
		ps = append(ps, Problem{Key: path + ".responses_max", Msg: "must be at least 1 with allow_responses"})
	}
	for _, v := range []struct {
		key string
		n   int
	}{{"subscriptions", p.Subscriptions}, {"payload", p.Payload}, {"data", p.Data}} {
		if v.n < 0 {
			ps = append(ps, Problem{Key: path + "." + v.key, Msg: "must not be negative (0 = no limit)"})
		}
	}
	return ps
}

// CheckSubjectTemplate says what is wrong with a subject template, or "":
// a NATS subject (an optional queue group after one space) whose tokens may
// hold the placeholders {{user}} and {{claim:NAME}}.
func CheckSubjectTemplate(s string) string {
	if strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	for _, ph := range templateRE.FindAllString(s, -1) {
		if !placeholderRE.MatchString(ph) {
			return fmt.Sprintf("placeholder %s is not {{user}} or {{claim:NAME}}", ph)
		}
	}
	bare := templateRE.ReplaceAllString(s, "x")
	if strings.ContainsAny(bare, "{}") {
		return "has an unclosed placeholder; write {{user}} or {{claim:NAME}}"
	}
	subject, queue, hasQueue := strings.Cut(bare, " ")
	if hasQueue && (queue == "" || strings.ContainsAny(queue, " \t")) {
		return "must be a subject, or a subject and a queue group separated by one space"
	}
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || strings.ContainsAny(tok, "\t\r\n") {
			return fmt.Sprintf("%q is not a NATS subject (empty token or white space)", s)
		}
	}
	if i := strings.Index(subject, ">"); i >= 0 && i != len(subject)-1 {
		return fmt.Sprintf("%q: > may only be the last token", s)
	}
	return ""
}

package natscallout

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/heraldhub/herald/internal/config"
)

// signer is a key that signs answers or user JWTs.
type signer struct {
	kp  nkeys.KeyPair
	pub string
	// priv is the ed25519 key of kp; account reports that pub is an account
	// key, the only kind that may sign user JWTs and answers.
	priv    ed25519.PrivateKey
	account bool
}

func newSigner(seed, what string) (*signer, error) {
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(seed)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	_, raw, err := nkeys.DecodeSeed([]byte(strings.TrimSpace(seed)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	sk := &signingKey{KeyPair: kp, pub: pub, priv: ed25519.NewKeyFromSeed(raw)}
	if check, err := nkeys.Encode(nkeys.Prefix(pub), sk.priv.Public().(ed25519.PublicKey)); err != nil || string(check) != pub {
		return nil, fmt.Errorf("%s: the derived key does not match the seed's public key", what)
	}
	return &signer{kp: sk, pub: pub, priv: sk.priv, account: nkeys.IsValidPublicAccountKey(pub)}, nil
}

// signingKey is an nkeys key pair whose ed25519 private key and public key
// string are derived once. nkeys derives both from the seed on every call, a
// scalar multiplication each (about 25 µs here), and encoding a JWT asks for
// the public key and a signature: three derivations per JWT, six per login,
// half of Herald's work per login. Signing is ed25519 over the same input,
// exactly what nkeys does; the JWT format stays nats-io/jwt's.
type signingKey struct {
	nkeys.KeyPair
	pub  string
	priv ed25519.PrivateKey
}

func (k *signingKey) PublicKey() (string, error)        { return k.pub, nil }
func (k *signingKey) Sign(input []byte) ([]byte, error) { return ed25519.Sign(k.priv, input), nil }

// placement is an account users may be placed in and the key that signs
// their user JWTs.
type placement struct {
	name string
	// signer signs the user JWT; issuerAccount is set when it is a signing
	// key of the account rather than the account's own key (operator mode).
	signer        *signer
	issuerAccount string
}

// keyring holds the keys of the service, built once from configuration.
type keyring struct {
	operator bool
	// issuer signs the answers; account is the account it speaks for (its
	// own key, or issuer_account when it is a signing key).
	issuer        *signer
	issuerAccount string
	account       string
	xkey          nkeys.KeyPair // nil: no encryption
	xpub          string
	def           *placement
	accounts      map[string]*placement
}

func newKeyring(cfg *config.NATSCallout) (*keyring, error) {
	k := &keyring{operator: cfg.Operator(), accounts: map[string]*placement{}}
	var err error
	if k.issuer, err = newSigner(cfg.IssuerSeed, "nats_callout.issuer_seed"); err != nil {
		return nil, err
	}
	k.account = k.issuer.pub
	if k.operator && cfg.IssuerAccount != "" && cfg.IssuerAccount != k.issuer.pub {
		k.issuerAccount = cfg.IssuerAccount
		k.account = cfg.IssuerAccount
	}
	if cfg.XKeySeed != "" {
		if k.xkey, err = nkeys.FromSeed([]byte(strings.TrimSpace(cfg.XKeySeed))); err != nil {
			return nil, fmt.Errorf("nats_callout.xkey_seed: %v", err)
		}
		if k.xpub, err = k.xkey.PublicKey(); err != nil {
			return nil, fmt.Errorf("nats_callout.xkey_seed: %v", err)
		}
	}
	if k.def, err = k.place(cfg.Account, cfg.AccountSigningSeed, "nats_callout.account_signing_seed"); err != nil {
		return nil, err
	}
	k.accounts[k.def.name] = k.def
	for i, a := range cfg.Accounts {
		p, err := k.place(a.Name, a.SigningSeed, fmt.Sprintf("nats_callout.accounts[%d].signing_seed", i))
		if err != nil {
			return nil, err
		}
		k.accounts[p.name] = p
	}
	return k, nil
}

// place builds the placement of one account. In centralized mode the issuer
// signs every user JWT and the account is named by its aud; in operator mode
// the account's own key or one of its signing keys signs them.
func (k *keyring) place(name, seed, what string) (*placement, error) {
	if !k.operator {
		if name == "" {
			name = "$G"
		}
		return &placement{name: name, signer: k.issuer}, nil
	}
	if seed == "" {
		if name != k.account {
			return nil, fmt.Errorf("%s is required: account %s is not the callout account %s, so Herald needs the seed of %s or of one of its signing keys to sign its users", what, name, k.account, name)
		}
		return &placement{name: name, signer: k.issuer, issuerAccount: k.issuerAccount}, nil
	}
	s, err := newSigner(seed, what)
	if err != nil {
		return nil, err
	}
	p := &placement{name: name, signer: s}
	if s.pub != name {
		p.issuerAccount = name
	}
	return p, nil
}

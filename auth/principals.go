package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portico-sh/portico/db"
)

// maxPrincipalRunes is the longest principal name the principal map (and a CA's principals=)
// takes.
const maxPrincipalRunes = 128

// maxFromPatterns bounds a from list (a principal mapping's --from, a key's from=), so that no
// one can make every later check of it expensive.
const maxFromPatterns = 32

// laterServices are the names SPEC §1 keeps for services to come: they cannot be mapped, so that
// no mapping changes meaning when the service arrives.
var laterServices = []string{"pastes", "prose", "feeds"}

// CheckPrincipalName says why name cannot be a principal in the principal map or in a CA's
// principals= beside service names, or nil: 1 to 128 printable characters without spaces,
// commas or quotes, not starting with '-' or '!', and not a service name in any case (those are
// principals already).
func CheckPrincipalName(name string) error {
	switch {
	case name == "":
		return errors.New("a principal cannot be empty")
	case !utf8.ValidString(name):
		return errors.New("a principal must be UTF-8 text")
	case utf8.RuneCountInString(name) > maxPrincipalRunes:
		return fmt.Errorf("principal %q is longer than %d characters", SanitizeKeyID(name), maxPrincipalRunes)
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "!"):
		return fmt.Errorf("principal %q cannot start with %q", SanitizeKeyID(name), name[:1])
	case strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == ',' || r == '"' || r == '\'' || r == '\\'
	}) >= 0:
		return fmt.Errorf("principal %q has a space, comma, quote, backslash or unprintable character", SanitizeKeyID(name))
	}
	for _, s := range Services {
		if strings.EqualFold(name, string(s)) {
			return fmt.Errorf("%q is a service name: a certificate listing it gets that service without a mapping", name)
		}
	}
	for _, s := range laterServices {
		if strings.EqualFold(name, s) {
			return fmt.Errorf("%q is kept for a service to come and cannot be mapped", name)
		}
	}
	return nil
}

// ParseServices reads a comma-separated list of services ("pgs,tuns", "admin") and returns it
// in Services order, each once: just admin when admin is among them (it grants every service).
func ParseServices(s string) ([]Service, error) {
	var out []Service
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !KnownService(name) {
			return nil, fmt.Errorf("%q is not a service (services are %s)", SanitizeKeyID(name), serviceList(Services))
		}
		out = append(out, Service(name))
	}
	if slices.Contains(out, Admin) {
		return []Service{Admin}, nil
	}
	return slices.DeleteFunc(slices.Clone(Services), func(s Service) bool { return !slices.Contains(out, s) }), nil
}

// ParseFromList reads a comma-separated list of from= patterns (addresses, CIDR blocks,
// wildcards over addresses, each may be negated with '!'), as a principal mapping's --from
// takes it; at most 32.
func ParseFromList(s string) ([]string, error) {
	list := strings.Split(s, ",")
	if len(list) > maxFromPatterns {
		return nil, fmt.Errorf("at most %d address patterns", maxFromPatterns)
	}
	for i, p := range list {
		p = strings.TrimSpace(p)
		if err := checkFromPattern(p); err != nil {
			return nil, fmt.Errorf("address pattern %q: %w", SanitizeKeyID(p), err)
		}
		list[i] = p
	}
	return list, nil
}

// mappedServices returns the services mapping m gives a connection from ip; fromRefused says
// its --from kept it from applying.
func mappedServices(m db.PrincipalMapping, ip netip.Addr, haveIP bool) (services []Service, fromRefused bool) {
	if m.From != nil && (!haveIP || !matchFrom(m.From, ip)) {
		return nil, true
	}
	return expandPrincipals(m.Services), false
}

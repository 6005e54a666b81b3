package certifier

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/portico-sh/portico/auth"
)

// Bounds on the group map, which the operator writes but which is matched against every
// token's groups.
const (
	maxGroupName   = 256
	maxMapEntries  = 1000
	mapEntryFormat = "GROUP=SERVICES, such as web-team=pgs,tuns"
)

// Mapping says which services (certificate principals) each group of the identity provider
// gives. A group's name is matched exactly, as the provider spells it.
type Mapping struct {
	entries []mapEntry
}

type mapEntry struct {
	group    string
	services []auth.Service
}

// ParseMapEntry parses one --map value: GROUP=SERVICES, where SERVICES is a comma list of
// admin, pgs, tuns and pipe. The last "=" separates them, so a group name may contain "=".
func ParseMapEntry(s string) (group string, services []auth.Service, err error) {
	i := strings.LastIndexByte(s, '=')
	if i < 0 {
		return "", nil, fmt.Errorf("map %q: want %s", s, mapEntryFormat)
	}
	group, list := s[:i], s[i+1:]
	switch {
	case group == "":
		return "", nil, fmt.Errorf("map %q: the group name is empty (want %s)", s, mapEntryFormat)
	case len(group) > maxGroupName:
		return "", nil, fmt.Errorf("map %.40q...: a group name has at most %d bytes", s, maxGroupName)
	case strings.IndexFunc(group, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0:
		return "", nil, fmt.Errorf("map %q: the group name has a character that is not printable", s)
	}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if !auth.KnownService(name) {
			return "", nil, fmt.Errorf("map %q: %q is not a service (services are %s)", s, name, serviceNames(auth.Services))
		}
		if !slices.Contains(services, auth.Service(name)) {
			services = append(services, auth.Service(name))
		}
	}
	return group, services, nil
}

// ParseMapping parses --map values; a group may appear once.
func ParseMapping(values []string) (Mapping, error) {
	var m Mapping
	if len(values) > maxMapEntries {
		return m, fmt.Errorf("at most %d --map entries", maxMapEntries)
	}
	for _, v := range values {
		group, services, err := ParseMapEntry(v)
		if err != nil {
			return Mapping{}, err
		}
		if slices.ContainsFunc(m.entries, func(e mapEntry) bool { return e.group == group }) {
			return Mapping{}, fmt.Errorf("map: group %q is mapped twice; give all its services in one --map", group)
		}
		m.entries = append(m.entries, mapEntry{group, services})
	}
	return m, nil
}

// Len is the number of mapped groups.
func (m Mapping) Len() int { return len(m.entries) }

// Principals returns the services that groups map to, in auth.Services order, as certificate
// principals. Each service is named, also under admin, so that a CA limited on the gateway
// with principals="pgs,tuns" still counts what it may vouch for.
func (m Mapping) Principals(groups []string) []string {
	var out []string
	for _, s := range auth.Services {
		for _, e := range m.entries {
			if slices.Contains(e.services, s) && slices.Contains(groups, e.group) {
				out = append(out, string(s))
				break
			}
		}
	}
	return out
}

// String shows the mapping as --map values.
func (m Mapping) String() string {
	parts := make([]string, len(m.entries))
	for i, e := range m.entries {
		parts[i] = e.group + "=" + serviceNames(e.services)
	}
	return strings.Join(parts, " ")
}

func serviceNames(ss []auth.Service) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

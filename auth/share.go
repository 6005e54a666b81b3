package auth

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// ShareList is an owner's list of who else may use one of its resources (a pipe topic):
// account names and key fingerprints (SHA256:...), as given to `-a bob,SHA256:...`.
type ShareList []string

// maxShares bounds one share list, so a client cannot make every later check expensive.
const maxShares = 64

// ParseShareList reads a comma-separated list of account names and SHA256 key fingerprints.
// Empty entries are skipped; an entry that is neither is refused with a message naming it.
func ParseShareList(s string) (ShareList, error) {
	var l ShareList
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.HasPrefix(entry, "SHA256:") {
			if !validFingerprint(entry) {
				return nil, fmt.Errorf("%q is not a key fingerprint (SHA256:... as ssh-keygen -l prints)", entry)
			}
		} else if ValidAccountName(entry) != nil {
			return nil, fmt.Errorf("%q is neither an account name nor a key fingerprint", entry)
		}
		if !slices.Contains(l, entry) {
			if len(l) == maxShares {
				return nil, fmt.Errorf("at most %d accounts or keys may share a topic", maxShares)
			}
			l = append(l, entry)
		}
	}
	return l, nil
}

// validFingerprint reports whether fp is OpenSSH's SHA256 fingerprint form: "SHA256:" and
// the unpadded base64 of 32 bytes.
func validFingerprint(fp string) bool {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(fp, "SHA256:"))
	return err == nil && len(raw) == 32
}

// Admits reports whether the list names g's account or the key g signed with.
func (l ShareList) Admits(g Grant) bool {
	if g.IsSignup() || g.Account == "" {
		return false
	}
	return slices.Contains(l, g.Account) || slices.Contains(l, g.KeyFingerprint)
}

// MayUse decides whether g may use a resource of account owner (a pipe topic). A public
// resource is open to every account. A private one is open to its owner, and to others only
// while one of lists, the access lists the owner currently gives, admits them. A signup
// connection, which has no account yet, may use none.
func MayUse(g Grant, owner string, public bool, lists ...ShareList) bool {
	if g.IsSignup() || g.Account == "" {
		return false
	}
	if public || g.Account == owner {
		return true
	}
	for _, l := range lists {
		if l.Admits(g) {
			return true
		}
	}
	return false
}

package pipe

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portico-sh/portico/auth"
)

// publicOwner is the namespace of public topics. It is a reserved account name, so no account
// can own it.
const publicOwner = "public"

// maxTopicName is the longest topic name a client may give.
const maxTopicName = 128

// Topic is a resolved topic: the namespace it lives in and its name there. Every topic is
// named "owner/name"; public topics have the owner "public".
type Topic struct {
	Owner string // the owning account, or "public"
	Name  string // the name within the namespace
}

// Public reports whether the topic is public.
func (t Topic) Public() bool { return t.Owner == publicOwner }

// String is the topic's full name, "alice/alerts" or "public/alerts". It is the key the
// broker files the topic under.
func (t Topic) String() string { return t.Owner + "/" + t.Name }

// ResolveTopic turns the TOPIC a client named into a topic. caller is the client's account.
//   - With public set, or when the name starts with "public/", the topic is public.
//   - A name whose part before the first "/" has the form of an account name names that
//     account's topic (the caller's own when it is the caller's name): "alice/alerts".
//   - Any other name is in the caller's namespace: "alerts" is "caller/alerts".
//
// Nesting a name under an account-like prefix in one's own namespace is written with one's
// own name first: "alice/logs/app".
func ResolveTopic(caller, name string, public bool) (Topic, error) {
	if err := validTopicName(name); err != nil {
		return Topic{}, err
	}
	if public {
		return Topic{Owner: publicOwner, Name: strings.TrimPrefix(name, publicOwner+"/")}, nil
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (first == publicOwner || auth.ValidAccountName(first) == nil) {
		return Topic{Owner: first, Name: rest}, nil
	}
	return Topic{Owner: caller, Name: name}, nil
}

// validTopicName checks a TOPIC argument: 1–128 of A-Za-z0-9._- and "/", with no empty part
// between slashes.
func validTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case len(name) > maxTopicName:
		return fmt.Errorf("topic name is %d characters long; at most %d", len(name), maxTopicName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/", r)) {
			return fmt.Errorf("topic name %q may contain only A-Z a-z 0-9 . _ - and /", name)
		}
	}
	if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return fmt.Errorf("topic name %q has an empty part between slashes", name)
	}
	return nil
}

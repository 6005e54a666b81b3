package pipe

import (
	"context"
	"errors"
	"fmt"

	"github.com/portico-sh/portico/auth"
)

// Broker carries byte streams between the clients of topics. The in-process broker
// (NewMemoryBroker) serves one gateway; a broker shared by several gateways implements the
// same interface.
type Broker interface {
	// Join attaches a client to a topic. It fails with ErrNoAccess when the caller may not use
	// the topic, whether or not it exists.
	Join(ctx context.Context, req JoinRequest) (Client, error)
	// Topics describes the topics of account: those it owns, and the public ones its clients
	// have open.
	Topics(account string) []TopicStats
}

// Role is what a client does on a topic.
type Role int

// The roles of pub, sub and pipe.
const (
	Publisher  Role = iota + 1 // writes
	Subscriber                 // reads
	Peer                       // both: a pipe client
)

// Dispatch is how a publisher's chunks are spread over the readers.
type Dispatch int

// The dispatch modes of `pub -d`.
const (
	Multicast  Dispatch = iota // every chunk to every reader
	RoundRobin                 // each chunk to the next reader
)

// JoinRequest says who joins which topic, and how.
type JoinRequest struct {
	Topic Topic
	Role  Role
	Grant auth.Grant
	// Share is the owner's access list for the topic, kept while this client is attached.
	// Only the owner of a private topic may give one.
	Share    auth.ShareList
	Keep     bool     // Subscriber: stay when the last publisher leaves
	Echo     bool     // Peer: receive one's own writes
	Dispatch Dispatch // Publisher
}

// Client is one client attached to a topic.
type Client interface {
	// HasReader reports whether the topic has a reader other than this client.
	HasReader() bool
	// WaitReader blocks until the topic has a reader other than this client.
	WaitReader(ctx context.Context) error
	// Publish sends p, in order after this client's earlier writes. It blocks while a
	// reader's buffer is full (at most until that reader is dropped) and takes ownership of p.
	Publish(ctx context.Context, p []byte) error
	// CloseWrite says this client will write no more. Subscribers without Keep end when the
	// topic's last publisher has left or closed its writing; pipe clients do not count.
	CloseWrite()
	// Next returns the next chunk for a reader. It returns io.EOF at the end of the stream,
	// ErrDropped when the reader's buffer stayed full too long, and ErrAccessEnded when the
	// owner stopped sharing the topic.
	Next(ctx context.Context) ([]byte, error)
	// Events delivers status changes for the client's status lines. It is never closed.
	Events() <-chan Event
	// Dropped is closed when the broker drops this client as a stalled reader.
	Dropped() <-chan struct{}
	// Stopped is closed when this client may write no more: it left, was dropped, or the
	// owner stopped sharing the topic with it. Err then says which.
	Stopped() <-chan struct{}
	Err() error
	// Leave detaches the client; it is safe to call more than once.
	Leave()
}

// Event is a status change worth a status line.
type Event int

// Events.
const (
	ReaderJoined Event = iota + 1 // a subscriber or pipe client joined the topic
)

// TopicStats are the counts `ls` shows for one topic.
type TopicStats struct {
	Topic       string         `json:"topic"`
	Public      bool           `json:"public"`
	Publishers  int            `json:"publishers"`
	Subscribers int            `json:"subscribers"`
	Pipes       int            `json:"pipes"`
	Shared      auth.ShareList `json:"shared_with"`
}

// TooManyReadersError refuses a reader to a topic that has as many as it may have; it is
// ErrTooManyReaders.
type TooManyReadersError struct {
	Topic Topic
	Max   int
}

func (e *TooManyReadersError) Error() string {
	return fmt.Sprintf("topic %s has %d readers, the most one topic may have", e.Topic, e.Max)
}

func (e *TooManyReadersError) Is(target error) bool { return target == ErrTooManyReaders }

// Errors a Broker returns.
var (
	ErrTooManyReaders = errors.New("the topic has as many readers as it may have")
	ErrNoAccess       = errors.New("no access")
	ErrLeft           = errors.New("the client has left the topic")
	ErrDropped        = errors.New("dropped: the reader's buffer stayed full")
	ErrAccessEnded    = errors.New("the owner stopped sharing the topic")
	ErrNotOwner       = errors.New("only the owner of a topic may share it")
	ErrPublicShared   = errors.New("public topics are shared with everyone already")
)

package taskspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
)

// MessageVersion is the version of the scheduler-to-executor framework
// messages this build writes and reads.
const MessageVersion = 1

// JoinUpdate is a framework MESSAGE from the scheduler to an executor: the
// serf LAN addresses (ip:port) of every server the scheduler has placed.
//
// A task spec is fixed at launch, but the first servers are launched before
// the scheduler knows where the others will run, and Mesos-DNS lists a task
// only once it is TASK_RUNNING (which a server reaches only after joining).
// The scheduler therefore hands over the server addresses as they become
// known, and the executor adds them to its join targets.
type JoinUpdate struct {
	Version   int      `json:"version"`
	Kind      string   `json:"kind"` // "join"
	JoinAddrs []string `json:"join_addrs"`
}

const kindJoin = "join"

// EncodeJoinUpdate returns the MESSAGE data for addrs.
func EncodeJoinUpdate(addrs []string) ([]byte, error) {
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("taskspec: join address %q: want ip:port: %w", a, err)
		}
	}
	if addrs == nil {
		addrs = []string{}
	}
	return json.Marshal(JoinUpdate{Version: MessageVersion, Kind: kindJoin, JoinAddrs: addrs})
}

// DecodeJoinUpdate parses MESSAGE data written by EncodeJoinUpdate.
func DecodeJoinUpdate(data []byte) (JoinUpdate, error) {
	if len(data) == 0 {
		return JoinUpdate{}, errors.New("taskspec: empty message")
	}
	var u JoinUpdate
	if err := json.Unmarshal(data, &u); err != nil {
		return JoinUpdate{}, fmt.Errorf("taskspec: message is not a scheduler message: %w", err)
	}
	if u.Version != MessageVersion {
		return JoinUpdate{}, fmt.Errorf("taskspec: message version %d is not supported (this executor reads %d)", u.Version, MessageVersion)
	}
	if u.Kind != kindJoin {
		return JoinUpdate{}, fmt.Errorf("taskspec: message kind %q is not known (want %q)", u.Kind, kindJoin)
	}
	for _, a := range u.JoinAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return JoinUpdate{}, fmt.Errorf("taskspec: join address %q: want ip:port: %w", a, err)
		}
	}
	return u, nil
}

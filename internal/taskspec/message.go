package taskspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
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

// TLSRenew is a framework MESSAGE from the scheduler to a server's
// executor: its TLS certificate is due; fetch a new one (GET SecretsPath
// with the task's credential) from the scheduler API at SchedulerURL,
// load it into the running agent and report on TLSRenewPath. The URL is
// in the message because the scheduler that sends it may not be the one
// that launched the task (Marathon relaunches it elsewhere after a
// failover), and the credential outlives that.
type TLSRenew struct {
	Version      int    `json:"version"`
	Kind         string `json:"kind"` // "tls_renew"
	SchedulerURL string `json:"scheduler_url"`
	// CACert (PEM) comes with an https SchedulerURL: the executor trusts
	// it only (as SecretsRef.CACert).
	CACert string `json:"ca_cert,omitempty"`
}

const kindTLSRenew = "tls_renew"

// TLSRenewPath is the scheduler API route where a server's executor
// reports a certificate renewal (POST TLSRenewPath?task_id=<id>, the
// task's credential as "Authorization: Bearer", a TLSRenewReport).
const TLSRenewPath = "/v1/executor/tls"

// TLSRenewReport is the executor's answer to a TLSRenew: the serial (hex)
// and expiry of the certificate the agent now presents, or why it could
// not load one (Error; the scheduler then restarts the server instead).
type TLSRenewReport struct {
	Serial   string    `json:"serial,omitempty"`
	NotAfter time.Time `json:"not_after,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// MessageKind reads the kind of a scheduler MESSAGE of this version.
func MessageKind(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("taskspec: empty message")
	}
	var m struct {
		Version int    `json:"version"`
		Kind    string `json:"kind"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("taskspec: message is not a scheduler message: %w", err)
	}
	if m.Version != MessageVersion {
		return "", fmt.Errorf("taskspec: message version %d is not supported (this executor reads %d)", m.Version, MessageVersion)
	}
	switch m.Kind {
	case kindJoin, kindTLSRenew, kindLeave, kindSecretsCopy, kindHandOver:
		return m.Kind, nil
	}
	return "", fmt.Errorf("taskspec: message kind %q is not known (want %q, %q, %q, %q or %q)", m.Kind, kindJoin, kindTLSRenew, kindLeave, kindSecretsCopy, kindHandOver)
}

// KindJoin, KindTLSRenew, KindLeave, KindSecretsCopy and KindHandOver
// are what MessageKind returns.
const (
	KindHandOver    = kindHandOver
	KindJoin        = kindJoin
	KindTLSRenew    = kindTLSRenew
	KindLeave       = kindLeave
	KindSecretsCopy = kindSecretsCopy
)

// SecretsCopyRequest is a framework MESSAGE to a server's executor about
// the secrets copy on its volume. From a scheduler whose secrets were lost
// with its state: present the copy to the scheduler API at SchedulerURL
// (SecretsCopyPath, with the task's credential). With Refresh, from a
// scheduler whose secrets changed (a rotation): fetch the task's secrets
// again there (SecretsPath) and rewrite the copy.
type SecretsCopyRequest struct {
	Version      int    `json:"version"`
	Kind         string `json:"kind"` // "secrets_copy"
	SchedulerURL string `json:"scheduler_url"`
	// CACert (PEM) comes with an https SchedulerURL (as TLSRenew.CACert).
	CACert  string `json:"ca_cert,omitempty"`
	Refresh bool   `json:"refresh,omitempty"`
}

const kindSecretsCopy = "secrets_copy"

// EncodeSecretsCopyRequest returns the MESSAGE data asking for the copy
// at schedulerURL (with caPEM when it is https).
func EncodeSecretsCopyRequest(schedulerURL, caPEM string, refresh bool) ([]byte, error) {
	if err := validMessageChannel(schedulerURL, caPEM); err != nil {
		return nil, err
	}
	return json.Marshal(SecretsCopyRequest{Version: MessageVersion, Kind: kindSecretsCopy, SchedulerURL: schedulerURL, CACert: caPEM, Refresh: refresh})
}

// DecodeSecretsCopyRequest parses MESSAGE data written by
// EncodeSecretsCopyRequest.
func DecodeSecretsCopyRequest(data []byte) (SecretsCopyRequest, error) {
	k, err := MessageKind(data)
	if err != nil {
		return SecretsCopyRequest{}, err
	}
	if k != kindSecretsCopy {
		return SecretsCopyRequest{}, fmt.Errorf("taskspec: message kind %q, want %q", k, kindSecretsCopy)
	}
	var m SecretsCopyRequest
	if err := json.Unmarshal(data, &m); err != nil {
		return SecretsCopyRequest{}, fmt.Errorf("taskspec: message is not a scheduler message: %w", err)
	}
	if err := validMessageChannel(m.SchedulerURL, m.CACert); err != nil {
		return SecretsCopyRequest{}, err
	}
	return m, nil
}

// EncodeTLSRenew returns the MESSAGE data asking for a renewal from the
// scheduler at schedulerURL (with caPEM when it is https).
func EncodeTLSRenew(schedulerURL, caPEM string) ([]byte, error) {
	if err := validMessageChannel(schedulerURL, caPEM); err != nil {
		return nil, err
	}
	return json.Marshal(TLSRenew{Version: MessageVersion, Kind: kindTLSRenew, SchedulerURL: schedulerURL, CACert: caPEM})
}

// DecodeTLSRenew parses MESSAGE data written by EncodeTLSRenew.
func DecodeTLSRenew(data []byte) (TLSRenew, error) {
	k, err := MessageKind(data)
	if err != nil {
		return TLSRenew{}, err
	}
	if k != kindTLSRenew {
		return TLSRenew{}, fmt.Errorf("taskspec: message kind %q, want %q", k, kindTLSRenew)
	}
	var m TLSRenew
	if err := json.Unmarshal(data, &m); err != nil {
		return TLSRenew{}, fmt.Errorf("taskspec: message is not a scheduler message: %w", err)
	}
	if err := validMessageChannel(m.SchedulerURL, m.CACert); err != nil {
		return TLSRenew{}, err
	}
	return m, nil
}

func validMessageChannel(u, caPEM string) error {
	if err := validSchedulerURL(u); err != nil {
		return err
	}
	if err := ValidChannel(u, caPEM); err != nil {
		return fmt.Errorf("taskspec: %w", err)
	}
	return nil
}

func validSchedulerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("taskspec: scheduler URL %q: want http(s)://host:port of the scheduler API", s)
	}
	return nil
}

// Leave is a framework MESSAGE from the scheduler to the executor of a
// server that goes away for good (scale-down, replace): leave the Consul
// cluster gracefully (consul leave: the LAN and WAN pools see it "left"
// and the raft leader removes its peer), then stop and end the task with
// TASK_KILLED labelled LabelLeft. Within bounds the leave; the scheduler
// kills the task and removes its peer itself when no report comes. It
// carries no secret.
type Leave struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"` // "leave"
	// Why is the scheduler's reason (scale-down, replace), for the logs.
	Why string `json:"why"`
	// WithinMillis bounds the graceful leave.
	WithinMillis int64 `json:"within_ms"`
}

const kindLeave = "leave"

// LabelLeft is the label of the terminal status an executor sends after
// a Leave: "true" when the agent left gracefully, "false" when the leave
// did not complete (the agent stopped anyway).
const LabelLeft = "consul_left"

// EncodeLeave returns the MESSAGE data asking a server to leave within d.
func EncodeLeave(why string, within time.Duration) ([]byte, error) {
	if within <= 0 {
		return nil, fmt.Errorf("taskspec: leave within %v: want a positive duration", within)
	}
	return json.Marshal(Leave{Version: MessageVersion, Kind: kindLeave, Why: why, WithinMillis: within.Milliseconds()})
}

// DecodeLeave parses MESSAGE data written by EncodeLeave.
func DecodeLeave(data []byte) (Leave, error) {
	k, err := MessageKind(data)
	if err != nil {
		return Leave{}, err
	}
	if k != kindLeave {
		return Leave{}, fmt.Errorf("taskspec: message kind %q, want %q", k, kindLeave)
	}
	var m Leave
	if err := json.Unmarshal(data, &m); err != nil {
		return Leave{}, fmt.Errorf("taskspec: message is not a scheduler message: %w", err)
	}
	if m.WithinMillis <= 0 {
		return Leave{}, fmt.Errorf("taskspec: leave within %d ms: want a positive duration", m.WithinMillis)
	}
	return m, nil
}

// Within is how long the leave may take.
func (m Leave) Within() time.Duration { return time.Duration(m.WithinMillis) * time.Millisecond }

package taskspec

import (
	"encoding/json"
	"fmt"
	"time"
)

// HandOver is a framework MESSAGE from the scheduler to the executor of
// the raft leader, before the scheduler asks Consul to hand leadership to
// another server: hold the requests that need the leader until this
// server no longer leads, at most HoldMillis, and answer with
// HandOverReady (consulagent.HoldForHandOver says why). It carries no
// secret.
type HandOver struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"` // "hand_over"
	// Seq names this request; the answer carries it back.
	Seq int64 `json:"seq"`
	// To is the server leadership goes to, for the logs.
	To         string `json:"to"`
	HoldMillis int64  `json:"hold_ms"`
}

const kindHandOver = "hand_over"

// EncodeHandOver returns the MESSAGE data of a hand-over request.
func EncodeHandOver(seq int64, to string, hold time.Duration) ([]byte, error) {
	if hold <= 0 {
		return nil, fmt.Errorf("taskspec: hand-over hold %v: want a positive duration", hold)
	}
	return json.Marshal(HandOver{Version: MessageVersion, Kind: kindHandOver, Seq: seq, To: to, HoldMillis: hold.Milliseconds()})
}

// DecodeHandOver parses MESSAGE data written by EncodeHandOver.
func DecodeHandOver(data []byte) (HandOver, error) {
	k, err := MessageKind(data)
	if err != nil {
		return HandOver{}, err
	}
	if k != kindHandOver {
		return HandOver{}, fmt.Errorf("taskspec: message kind %q, want %q", k, kindHandOver)
	}
	var m HandOver
	if err := json.Unmarshal(data, &m); err != nil {
		return HandOver{}, fmt.Errorf("taskspec: message is not a scheduler message: %w", err)
	}
	if m.HoldMillis <= 0 {
		return HandOver{}, fmt.Errorf("taskspec: hand-over hold %d ms: want a positive duration", m.HoldMillis)
	}
	return m, nil
}

// Hold is how long the server may hold requests at most.
func (m HandOver) Hold() time.Duration { return time.Duration(m.HoldMillis) * time.Millisecond }

// HandOverReady is the executor's MESSAGE to the scheduler answering a
// HandOver: the server holds its requests now (Leads), or it does not
// lead and holds nothing.
type HandOverReady struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"` // "hand_over_ready"
	Seq     int64  `json:"seq"`
	TaskID  string `json:"task_id"`
	Leads   bool   `json:"leads"`
}

const kindHandOverReady = "hand_over_ready"

// EncodeHandOverReady returns the executor MESSAGE data answering seq.
func EncodeHandOverReady(seq int64, taskID string, leads bool) ([]byte, error) {
	return json.Marshal(HandOverReady{Version: MessageVersion, Kind: kindHandOverReady, Seq: seq, TaskID: taskID, Leads: leads})
}

// DecodeHandOverReady parses an executor MESSAGE written by
// EncodeHandOverReady.
func DecodeHandOverReady(data []byte) (HandOverReady, error) {
	var m HandOverReady
	if err := json.Unmarshal(data, &m); err != nil {
		return HandOverReady{}, fmt.Errorf("taskspec: not an executor message: %w", err)
	}
	if m.Version != MessageVersion || m.Kind != kindHandOverReady {
		return HandOverReady{}, fmt.Errorf("taskspec: executor message version %d kind %q, want %d %q", m.Version, m.Kind, MessageVersion, kindHandOverReady)
	}
	if m.TaskID == "" {
		return HandOverReady{}, fmt.Errorf("taskspec: %s message without a task ID", kindHandOverReady)
	}
	return m, nil
}

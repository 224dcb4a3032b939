package mesossim

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/x-protobuf"
)

// stream is one SUBSCRIBE connection: a RecordIO event stream written by
// the HTTP handler goroutine from a queue filled under the master lock.
type stream struct {
	id          string // Mesos-Stream-Id
	contentType string

	mu      sync.Mutex
	queue   [][]byte
	wake    chan struct{}
	closing bool // finish after the queue drains (terminating chunk)
	abort   bool // drop the connection (plain EOF, as a dying master)
	done    chan struct{}
}

func newStream(id, contentType string) *stream {
	return &stream{id: id, contentType: contentType, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func encodeEvent(contentType string, ev *scheduler.Event) []byte {
	if contentType == mediaProtobuf {
		b, err := ev.Marshal()
		if err != nil {
			panic(err) // generated code; cannot fail for a valid message
		}
		return b
	}
	return protoToJSON(ev)
}

// send queues an event; it never blocks.
func (s *stream) send(ev *scheduler.Event) {
	s.sendRaw(encodeEvent(s.contentType, ev))
}

func (s *stream) sendRaw(rec []byte) {
	s.mu.Lock()
	if !s.closing && !s.abort {
		s.queue = append(s.queue, rec)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends the stream after the queued events (zero-length chunk).
func (s *stream) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.poke()
}

// kill drops the connection without the terminating chunk.
func (s *stream) kill() {
	s.mu.Lock()
	s.abort = true
	s.queue = nil
	s.mu.Unlock()
	s.poke()
}

// serve writes the stream until it is closed or the client goes away.
// heartbeat is the interval of HEARTBEAT events (the first one is queued
// by the master right after SUBSCRIBED). It returns true when the client
// disconnected (as opposed to the master closing the stream).
func (s *stream) serve(w http.ResponseWriter, r *http.Request, heartbeat time.Duration) (clientGone bool) {
	defer close(s.done)
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Mesos-Stream-Id", s.id)
	w.Header().Set("Content-Type", s.contentType)
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	ticker := time.NewTicker(heartbeat)
	defer ticker.Stop()
	hb := encodeEvent(s.contentType, &scheduler.Event{Type: scheduler.Event_HEARTBEAT})
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		closing, abort := s.closing, s.abort
		s.mu.Unlock()
		if abort {
			panic(http.ErrAbortHandler)
		}
		for _, rec := range q {
			noteRecord(len(rec))
			if _, err := w.Write(append(strconv.AppendInt(nil, int64(len(rec)), 10), '\n')); err != nil {
				return true
			}
			if _, err := w.Write(rec); err != nil {
				return true
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if closing {
			return false
		}
		select {
		case <-s.wake:
		case <-ticker.C:
			s.sendRaw(hb)
		case <-r.Context().Done():
			return true
		}
	}
}

// largestRecord is the largest event record any simulated master of this
// process has written to a scheduler.
var largestRecord atomic.Int64

func noteRecord(n int) {
	for {
		cur := largestRecord.Load()
		if int64(n) <= cur || largestRecord.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// LargestEventBytes is the size of the largest event record sent to a
// scheduler by any simulated master in this process: with every offer of
// an allocation cycle in one OFFERS event, as a real master sends them,
// the size a scheduler must read at once.
func LargestEventBytes() int64 { return largestRecord.Load() }

package mesossim

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gogo/protobuf/proto"
	"github.com/google/uuid"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func (m *master) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/scheduler", m.serveScheduler)
	mux.HandleFunc("/master/api/v1/scheduler", m.serveScheduler)
	for _, p := range []string{"/master/state", "/state", "/master/state.json", "/state.json"} {
		mux.HandleFunc(p, m.serveState)
	}
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"version":%q}`, Version)
	})
	mux.HandleFunc("/sim/v1/", m.cl.serveFaults)
	return mux
}

func textError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

// negotiate picks the response media type from Accept (M/http.cpp 547-564):
// JSON whenever it is acceptable, else protobuf, else "".
func negotiate(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON
	}
	json, pb := false, false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
				continue
			}
		}
		switch mt {
		case "*/*", "application/*":
			json, pb = true, true
		case mediaJSON:
			json = true
		case mediaProtobuf:
			pb = true
		}
	}
	switch {
	case json:
		return mediaJSON
	case pb:
		return mediaProtobuf
	}
	return ""
}

func (m *master) serveScheduler(w http.ResponseWriter, r *http.Request) {
	principal, ok := m.authenticateFramework(w, r)
	if !ok {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		textError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("405 Method Not Allowed. Expecting one of { 'POST' }, but received '%s'.", r.Method))
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		textError(w, http.StatusBadRequest, "Expecting 'Content-Type' to be present")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		textError(w, http.StatusBadRequest, "Failed to read body: "+err.Error())
		return
	}
	var call scheduler.Call
	switch ct {
	case mediaJSON:
		v, err := parseJSONBody(body)
		if err != nil {
			textError(w, http.StatusBadRequest, "Failed to parse body into JSON: "+err.Error())
			return
		}
		if err := jsonToProto(v, &call); err != nil {
			textError(w, http.StatusBadRequest, "Failed to convert JSON into Call protobuf: "+err.Error())
			return
		}
	case mediaProtobuf:
		if err := proto.Unmarshal(body, &call); err != nil {
			var rnse *proto.RequiredNotSetError
			if errors.As(err, &rnse) {
				textError(w, http.StatusBadRequest, "Failed to validate scheduler::Call: Not initialized: "+requiredField(err))
				return
			}
			textError(w, http.StatusBadRequest, "Failed to parse body into Call protobuf")
			return
		}
	default:
		textError(w, http.StatusUnsupportedMediaType, "Expecting 'Content-Type' of application/json or application/x-protobuf")
		return
	}
	if err := validateCall(&call); err != nil {
		textError(w, http.StatusBadRequest, "Failed to validate scheduler::Call: "+err.Error())
		return
	}
	if msg := principalMismatch(principal, &call); msg != "" {
		textError(w, http.StatusBadRequest, "Failed to validate scheduler::Call: "+msg)
		return
	}

	if call.Type == scheduler.Call_SUBSCRIBE {
		accept := negotiate(r.Header.Get("Accept"))
		if accept == "" {
			textError(w, http.StatusNotAcceptable, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")
			return
		}
		if r.Header.Get("Mesos-Stream-Id") != "" {
			textError(w, http.StatusBadRequest, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
			return
		}
		s := newStream(uuid.NewString(), accept)
		fw := m.subscribe(&call, s)
		gone := s.serve(w, r, m.heartbeat)
		if gone && fw != "" {
			m.streamClosed(fw, s)
		}
		return
	}
	if call.Type == scheduler.Call_RECONCILE_OPERATIONS && negotiate(r.Header.Get("Accept")) == "" {
		textError(w, http.StatusNotAcceptable, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")
		return
	}

	fwID := call.GetFrameworkID().GetValue()
	m.mu.Lock()
	fw := m.frameworks[fwID]
	switch {
	case m.stopped:
		m.mu.Unlock()
		textError(w, http.StatusServiceUnavailable, "Master has not finished recovery")
		return
	case fw == nil:
		m.mu.Unlock()
		textError(w, http.StatusBadRequest, "Framework cannot be found")
		return
	case !fw.connected:
		m.mu.Unlock()
		textError(w, http.StatusForbidden, "Framework is not subscribed")
		return
	}
	sid := r.Header.Get("Mesos-Stream-Id")
	if sid == "" {
		m.mu.Unlock()
		textError(w, http.StatusBadRequest, "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
		return
	}
	if sid != fw.stream.id {
		m.mu.Unlock()
		textError(w, http.StatusBadRequest, fmt.Sprintf(
			"The stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s", sid, fwID))
		return
	}
	code, respBody := m.dispatch(fw, &call, negotiate(r.Header.Get("Accept")))
	m.mu.Unlock()
	switch code {
	case http.StatusAccepted:
		w.WriteHeader(http.StatusAccepted)
	case http.StatusOK:
		if respBody != nil {
			w.Header().Set("Content-Type", respBody.contentType)
			w.WriteHeader(http.StatusOK)
			w.Write(respBody.data)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		textError(w, code, respBody.message)
	}
}

type callResponse struct {
	contentType string
	data        []byte
	message     string
}

func requiredField(err error) string {
	s := err.Error()
	if i := strings.Index(s, "required field "); i >= 0 {
		rest := s[i+len("required field "):]
		if j := strings.Index(rest, " "); j > 0 {
			rest = rest[:j]
		}
		return strings.Trim(rest, `"`)
	}
	return s
}

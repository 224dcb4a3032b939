package consulagent

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logWriter turns Consul's JSON log lines (log_json: hclog's @level,
// @message, @module and key/value pairs) into structured zap entries, so
// the executor writes one log stream in one format.
type logWriter struct {
	log *zap.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := w.buf[:i]
		w.emit(line)
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *logWriter) emit(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		w.log.Info(string(line))
		return
	}
	msg, _ := rec["@message"].(string)
	// Consul already filtered by the task's log_level; its debug and trace
	// lines go out at info (with consul_level saying what they are), so a
	// task spec asking for DEBUG gets them from an executor logging at info.
	level := zapcore.InfoLevel
	switch strings.ToLower(stringOf(rec["@level"])) {
	case "warn":
		level = zapcore.WarnLevel
	case "error":
		level = zapcore.ErrorLevel
	}
	fields := make([]zap.Field, 0, len(rec))
	for k, v := range rec {
		switch k {
		case "@message", "@timestamp":
			continue
		case "@level":
			if l := stringOf(v); l == "debug" || l == "trace" {
				fields = append(fields, zap.String("consul_level", l))
			}
		case "@module":
			fields = append(fields, zap.Any("module", v))
		default:
			fields = append(fields, zap.Any(k, v))
		}
	}
	if ce := w.log.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

package consulagent

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogWriter(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	w := &logWriter{log: zap.New(core)}
	w.Write([]byte(`{"@level":"warn","@message":"serf: ","@module":"agent.server.serf.lan","@timestamp":"x","member":"a"}` + "\n" + `{"@level":"debug","@message":"dbg"`))
	w.Write([]byte("}\nnot json\n"))
	got := logs.All()
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3 (a line split across writes is one entry)", len(got))
	}
	if got[0].Level != zapcore.WarnLevel || got[0].ContextMap()["module"] != "agent.server.serf.lan" || got[0].ContextMap()["member"] != "a" {
		t.Errorf("first entry %+v", got[0])
	}
	if got[1].Message != "dbg" || got[1].Level != zapcore.InfoLevel || got[1].ContextMap()["consul_level"] != "debug" {
		t.Errorf("debug line %+v: want info level with consul_level debug", got[1])
	}
	if got[2].Message != "not json" {
		t.Errorf("raw line %+v", got[2])
	}
}

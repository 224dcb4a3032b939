package dev

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// harnessLogName is the file in a test's work dir that holds the dev
// harness's own log (simulated master and agents, Mesos-DNS) at info
// level, as `dcos-consul dev` writes it (at debug, Mesos-DNS's reload
// every second filled the tail dumpLogs prints when the test fails).
const harnessLogName = "dev.log"

// harnessLogger logs the dev harness to workDir/dev.log and only its
// warnings to the test: a failing test's output then opens with the
// test's own lines and its failure, not thousands of harness lines (CI
// shows a failing test's first lines, and the failure was lost among
// them).
func harnessLogger(t *testing.T, workDir string) *zap.Logger {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(workDir, harnessLogName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("dev harness log: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	file := zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.Lock(f), zapcore.InfoLevel)
	toTest := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()
	return zap.New(zapcore.NewTee(file, toTest)).Named("dev")
}

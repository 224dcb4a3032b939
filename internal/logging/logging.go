// Package logging builds the zap loggers of every dcos-consul command:
// human-readable on a terminal, JSON otherwise (Marathon and Mesos sandboxes,
// CI), at a level named by the operator.
package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// New returns a logger writing to stderr at level ("debug", "info", "warn",
// "error"; empty means info). JSON unless stderr is a terminal.
func New(level string) (*zap.Logger, error) {
	lvl := zapcore.InfoLevel
	if strings.TrimSpace(level) != "" {
		if err := lvl.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
			return nil, fmt.Errorf("log level %q: want debug, info, warn or error: %w", level, err)
		}
	}
	var enc zapcore.Encoder
	if term.IsTerminal(int(os.Stderr.Fd())) {
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(cfg)
	} else {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(core, zap.AddCaller()), nil
}

// NewFile returns a logger appending JSON lines to the file at path, at
// level (as New), and the file to close when done.
func NewFile(level, path string) (*zap.Logger, *os.File, error) {
	lvl := zapcore.InfoLevel
	if strings.TrimSpace(level) != "" {
		if err := lvl.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
			return nil, nil, fmt.Errorf("log level %q: want debug, info, warn or error: %w", level, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the log file: %w", err)
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(cfg), zapcore.Lock(f), lvl)
	return zap.New(core, zap.AddCaller()), f, nil
}

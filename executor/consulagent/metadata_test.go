package consulagent

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
)

func TestRepairServerMetadata(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "server_metadata.json")
	repairServerMetadata(dir, zap.NewNop()) // none: nothing happens
	os.WriteFile(f, []byte(`{"last_seen_unix":1}`), 0o600)
	repairServerMetadata(dir, zap.NewNop())
	if _, err := os.Stat(f); err != nil {
		t.Fatal("a valid file was removed")
	}
	os.WriteFile(f, nil, 0o600)
	repairServerMetadata(dir, zap.NewNop())
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Fatal("a truncated file was kept")
	}
}

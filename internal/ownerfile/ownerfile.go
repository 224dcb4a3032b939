// Package ownerfile writes files that hold secrets: readable by their
// owner only, replaced whole (a new file renamed over the old one), so
// there is never a moment with a wider mode or a partial content.
package ownerfile

import (
	"os"
	"path/filepath"
)

// Write writes content to path with mode 0600 through a temporary file in
// the same directory, synced and renamed over path.
func Write(path, content string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// fileTarget keeps <name> and <name>.sha256 in a directory.
type fileTarget struct{ dir string }

func (f *fileTarget) String() string { return "file://" + f.dir }

func (f *fileTarget) Put(ctx context.Context, name string, r io.Reader) (Entry, error) {
	if !ValidName(name) {
		return Entry{}, fmt.Errorf("invalid snapshot name %q", name)
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return Entry{}, fmt.Errorf("backup directory: %w", err)
	}
	tmp, err := os.CreateTemp(f.dir, ".tmp-"+name+"-*")
	if err != nil {
		return Entry{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), readerCtx{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Entry{}, fmt.Errorf("write snapshot %s: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// The checksum first: a snapshot without one is never listed, a
	// checksum without its snapshot is ignored.
	if err := writeAtomic(filepath.Join(f.dir, name+".sha256"), []byte(sum+"  "+name+"\n")); err != nil {
		return Entry{}, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(f.dir, name)); err != nil {
		return Entry{}, fmt.Errorf("store snapshot %s: %w", name, err)
	}
	syncDir(f.dir)
	st, err := os.Stat(filepath.Join(f.dir, name))
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: name, Size: n, SHA256: sum, Taken: st.ModTime().UTC()}, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func (f *fileTarget) List(ctx context.Context) ([]Entry, error) {
	des, err := os.ReadDir(f.dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", f.dir, err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !ValidName(name) {
			continue
		}
		sum, err := readSum(filepath.Join(f.dir, name+".sha256"))
		if err != nil {
			continue // not completely written
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, Entry{Name: name, Size: info.Size(), SHA256: sum, Taken: info.ModTime().UTC()})
	}
	sortEntries(out)
	return out, nil
}

func readSum(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	if len(sum) != 64 {
		return "", fmt.Errorf("%s is not a SHA-256 checksum", path)
	}
	return sum, nil
}

func (f *fileTarget) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("invalid snapshot name %q", name)
	}
	sum, err := readSum(filepath.Join(f.dir, name+".sha256"))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: its checksum: %w", name, err)
	}
	fh, err := os.Open(filepath.Join(f.dir, name))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return &verifier{r: fh, c: fh, h: sha256.New(), want: sum, name: name}, nil
}

func (f *fileTarget) Delete(ctx context.Context, name string) error {
	if !ValidName(name) {
		return fmt.Errorf("invalid snapshot name %q", name)
	}
	if err := os.Remove(filepath.Join(f.dir, name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Remove(filepath.Join(f.dir, name+".sha256")); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Remove(filepath.Join(f.dir, name+aclSuffix)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func (f *fileTarget) PutACL(ctx context.Context, name string, b []byte) error {
	if !ValidName(name) {
		return fmt.Errorf("invalid snapshot name %q", name)
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	return writeAtomic(filepath.Join(f.dir, name+aclSuffix), b) // mode 0600
}

func (f *fileTarget) GetACL(ctx context.Context, name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("invalid snapshot name %q", name)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, name+aclSuffix))
	if os.IsNotExist(err) {
		return nil, nil
	}
	return b, err
}

// verifier fails the read at EOF when the content's SHA-256 is not want.
type verifier struct {
	r          io.Reader
	c          io.Closer
	h          hash.Hash
	want, name string
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("snapshot %s is corrupt: SHA-256 %s, stored checksum %s", v.name, got, v.want)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.c.Close() }

// readerCtx stops a copy when ctx ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

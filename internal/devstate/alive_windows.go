package devstate

import "os"

// Alive reports whether process pid exists (dev itself runs on Linux only;
// the operator commands that read its file build for Windows too).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

package agent

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestGroupsGone: the child of a `sh -c` group leader counts as running
// until it has ended, after its shell has been reaped; zombies do not.
func TestGroupsGone(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 60; true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pg := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pg, syscall.SIGKILL) })
	deadline := time.Now().Add(time.Minute)
	for len(groupMembers(pg)) == 0 { // the shell forks sleep
		if time.Now().After(deadline) {
			t.Fatal("sleep never appeared in the shell's process group")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Only the shell ends (as a SIGKILLed executor's shell leaves its child).
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if groupsGone([]int{pg}, time.Now().Add(200*time.Millisecond)) {
		t.Fatal("groupsGone: true while sleep still runs in the group")
	}
	_ = syscall.Kill(-pg, syscall.SIGKILL)
	if !groupsGone([]int{pg}, time.Now().Add(time.Minute)) {
		t.Fatalf("groupsGone: false a minute after the group was killed; members %v", groupMembers(pg))
	}
}

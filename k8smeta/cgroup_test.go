package k8smeta

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	uidA = "9a1e4c2b-5f3d-4e8a-b7c6-0d2f1e3a4b5c"
	uidB = "3f6b8d10-27ac-4c9e-8e51-a4b2c7d9e0f1"
)

func TestParseCgroupFiles(t *testing.T) {
	tests := []struct {
		file string
		want Cgroup
	}{
		{"docker-cgroupfs-v1-hybrid.txt", Cgroup{ContainerID: "efe4203a4941bd77f7ba4c18ca3cd4924872e0e2632bd9565e0e559a00f926a8", Runtime: RuntimeDocker}},
		{"docker-systemd-v1.txt", Cgroup{ContainerID: "6de102c1cecc011032305908295668eedad74d736c6d216e4c42f416ae84988f", Runtime: RuntimeDocker}},
		{"docker-systemd-v2.txt", Cgroup{ContainerID: "6de102c1cecc011032305908295668eedad74d736c6d216e4c42f416ae84988f", Runtime: RuntimeDocker}},
		{"docker-in-docker-v1.txt", Cgroup{ContainerID: "25437081047c7971d2f51245b48f1164f706d9c60766dccb09958fc914ad08f1", Runtime: RuntimeDocker}},
		{"containerd-cgroupfs-besteffort-v1-hybrid.txt", Cgroup{ContainerID: "ec42d2b4b70a311c07d172def2450a2fa371654b11fb29c3ef9ae7f6dceadd17", PodUID: uidA}},
		{"containerd-cgroupfs-guaranteed-v2.txt", Cgroup{ContainerID: "ec42d2b4b70a311c07d172def2450a2fa371654b11fb29c3ef9ae7f6dceadd17", PodUID: uidA}},
		{"containerd-systemd-burstable-v1.txt", Cgroup{ContainerID: "8a91f2bcaabe0e8960d5a86509dced02f5e497a5d7c6fd3aade1847f0754be97", PodUID: uidB, Runtime: RuntimeContainerd}},
		{"containerd-systemd-burstable-v2.txt", Cgroup{ContainerID: "8a91f2bcaabe0e8960d5a86509dced02f5e497a5d7c6fd3aade1847f0754be97", PodUID: uidB, Runtime: RuntimeContainerd}},
		{"containerd-systemd-colon-v2.txt", Cgroup{ContainerID: "8a91f2bcaabe0e8960d5a86509dced02f5e497a5d7c6fd3aade1847f0754be97", PodUID: uidB, Runtime: RuntimeContainerd}},
		{"kind-nested-v2.txt", Cgroup{ContainerID: "16881906d96f4c7f61f8ab46c932468a6146a73c13e1bb26cc0f9adb470e7361", PodUID: uidB, Runtime: RuntimeContainerd}},
		{"crio-systemd-besteffort-v2.txt", Cgroup{ContainerID: "c64064614423cb790e88b3e5492ff5ccf673b25ae823089f7a60c65cda24d809", PodUID: uidA, Runtime: RuntimeCRIO}},
		{"crio-systemd-guaranteed-v2.txt", Cgroup{ContainerID: "c64064614423cb790e88b3e5492ff5ccf673b25ae823089f7a60c65cda24d809", PodUID: uidA, Runtime: RuntimeCRIO}},
		{"crio-conmon-v2.txt", Cgroup{}},
		{"podman-rootful-v2.txt", Cgroup{ContainerID: "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9", Runtime: RuntimePodman}},
		{"podman-rootless-v2.txt", Cgroup{ContainerID: "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9", Runtime: RuntimePodman}},
		{"podman-cgroupfs-v1.txt", Cgroup{ContainerID: "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9", Runtime: RuntimePodman}},
		{"container-cgroupns-v2.txt", Cgroup{}},
		{"host-systemd-v2.txt", Cgroup{}},
		{"host-process-v1-hybrid.txt", Cgroup{}}, // has a 32-hex memory cgroup: not a container
	}
	files, err := filepath.Glob("testdata/cgroup/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("testdata/cgroup has %d files, the table %d: keep them in step", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/cgroup", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := ParseCgroup(string(b)); got != tt.want {
				t.Errorf("ParseCgroup = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseCgroupPath(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		path string
		want Cgroup
	}{
		{"/docker/" + id, Cgroup{ContainerID: id, Runtime: RuntimeDocker}},
		{"/kubepods/burstable/pod" + uidA + "/" + id, Cgroup{ContainerID: id, PodUID: uidA}},
		{"/kubepods/besteffort/pod" + uidA + "/crio-" + id, Cgroup{ContainerID: id, PodUID: uidA, Runtime: RuntimeCRIO}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(uidA, "-", "_") + ".slice/docker-" + id + ".scope", Cgroup{ContainerID: id, PodUID: uidA, Runtime: RuntimeDocker}},
		// Upper-case UIDs are normalised.
		{"/kubepods/pod" + strings.ToUpper(uidA) + "/" + id, Cgroup{ContainerID: id, PodUID: uidA}},
		// Not containers.
		{"/docker/" + id[:63], Cgroup{}},
		{"/docker/" + strings.ToUpper(id), Cgroup{}},
		{"/docker-" + id + "x.scope", Cgroup{}},
		{"/system.slice/docker.service", Cgroup{}},
		{"/kubepods/besteffort/pod" + uidA, Cgroup{}}, // the pod's own cgroup: no container
		{"/", Cgroup{}},
		{"", Cgroup{}},
		// A pod segment that is not a UID is ignored, the container kept.
		{"/kubepods/podnotauid/" + id, Cgroup{ContainerID: id}},
	}
	for _, tt := range tests {
		if got := ParseCgroupPath(tt.path); got != tt.want {
			t.Errorf("ParseCgroupPath(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
}

func TestParseCgroupMalformed(t *testing.T) {
	id := strings.Repeat("0f", 32)
	for _, in := range []string{
		"", "\n", ":", "::", "0:", "garbage", "\n\n\n",
		"0::/docker/" + id[:10],
	} {
		if got := ParseCgroup(in); got != (Cgroup{}) {
			t.Errorf("ParseCgroup(%q) = %+v, want zero", in, got)
		}
	}
	// A path with colons keeps them; a missing trailing newline is fine.
	if got := ParseCgroup("0::/a:b/docker/" + id); got.ContainerID != id {
		t.Errorf("ParseCgroup with colon path = %+v", got)
	}
	// A line without the container comes first: the next one decides.
	if got := ParseCgroup("1:name=systemd:/\n0::/docker/" + id + "\n"); got.ContainerID != id {
		t.Errorf("ParseCgroup second line = %+v", got)
	}
}

func FuzzParseCgroup(f *testing.F) {
	files, _ := filepath.Glob("testdata/cgroup/*.txt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("0::/kubepods-pod" + uidA + ".slice:crio:" + strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, in string) {
		cg := ParseCgroup(in)
		if cg.ContainerID != "" && !isContainerID(cg.ContainerID) {
			t.Errorf("container id %q is not 64 hex", cg.ContainerID)
		}
		if cg.ContainerID == "" && (cg.PodUID != "" || cg.Runtime != "") {
			t.Errorf("pod or runtime without a container: %+v", cg)
		}
		if cg.PodUID != "" && (!isUID(cg.PodUID) || strings.ContainsAny(cg.PodUID, "_ABCDEF")) {
			t.Errorf("pod uid %q is not in API form", cg.PodUID)
		}
	})
}

func writeCgroupFile(t *testing.T, root string, pid int, content string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCgroupCache(t *testing.T) {
	root := t.TempDir()
	id := strings.Repeat("1a", 32)
	writeCgroupFile(t, root, 10, "0::/docker/"+id+"\n")
	writeCgroupFile(t, root, 11, "0::/user.slice\n")
	now := time.Unix(1000, 0)
	c := NewCgroupCache(CgroupConfig{ProcRoot: root, ExitGrace: time.Second, Now: func() time.Time { return now }})

	if got := c.Lookup(10); got.ContainerID != id {
		t.Fatalf("Lookup(10) = %+v", got)
	}
	if got := c.Lookup(11); got != (Cgroup{}) {
		t.Fatalf("Lookup(11) = %+v", got)
	}
	// Cached: the file changing does not matter.
	writeCgroupFile(t, root, 10, "0::/\n")
	if got := c.Lookup(10); got.ContainerID != id {
		t.Fatalf("cached Lookup(10) = %+v", got)
	}
	if h, r := c.hits.Load(), c.reads.Load(); h != 1 || r != 2 {
		t.Errorf("hits %d reads %d, want 1 2", h, r)
	}

	// Forget keeps the answer for the grace, then drops it.
	c.Forget(10)
	now = now.Add(500 * time.Millisecond)
	if got := c.Lookup(10); got.ContainerID != id {
		t.Fatalf("Lookup within grace = %+v", got)
	}
	now = now.Add(time.Second)
	if got := c.Lookup(10); got.ContainerID != "" {
		t.Fatalf("Lookup after grace = %+v, want a fresh read", got)
	}

	// A pid /proc does not know is cached as exiting, then expires.
	if got := c.Lookup(99); got != (Cgroup{}) {
		t.Fatalf("Lookup(99) = %+v", got)
	}
	writeCgroupFile(t, root, 99, "0::/docker/"+id+"\n")
	if got := c.Lookup(99); got != (Cgroup{}) {
		t.Fatalf("Lookup(99) again = %+v, want the cached miss", got)
	}
	now = now.Add(2 * time.Second)
	if got := c.Lookup(99); got.ContainerID != id {
		t.Fatalf("Lookup(99) after grace = %+v", got)
	}
}

func TestCgroupCacheBounded(t *testing.T) {
	root := t.TempDir()
	c := NewCgroupCache(CgroupConfig{ProcRoot: root, MaxPIDs: 8})
	for pid := uint32(1); pid <= 100; pid++ {
		c.Lookup(pid)
		if n := c.Len(); n > 8 {
			t.Fatalf("after pid %d the cache holds %d, bound 8", pid, n)
		}
	}
	if e := c.evictions.Load(); e != 92 {
		t.Errorf("evictions = %d, want 92", e)
	}
	if len(c.pids) != 8 || c.pids[100] == nil {
		t.Errorf("the newest pid must stay cached")
	}
}

// TestCgroupRealKernel makes the kubepods and Docker cgroup shapes in the
// machine's own cgroup hierarchies, moves a process into each and parses
// what the kernel then writes in its /proc/PID/cgroup. It needs root and a
// writable cgroup v1 or v2 mount.
func TestCgroupRealKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	var mounts []string
	for _, m := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(m, "cgroup.procs")); err == nil {
			mounts = append(mounts, m)
		}
	}
	if len(mounts) == 0 {
		t.Skip("no cgroup mount with cgroup.procs")
	}
	id := strings.Repeat("c0ffee", 10) + "beef"
	uidUnderscore := strings.ReplaceAll(uidA, "-", "_")
	shapes := []struct {
		rel  string
		want Cgroup
	}{
		{"weft-test-kubepods/besteffort/pod" + uidA + "/" + id, Cgroup{ContainerID: id, PodUID: uidA}},
		{"weft-test-kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidUnderscore + ".slice/cri-containerd-" + id + ".scope", Cgroup{ContainerID: id, PodUID: uidA, Runtime: RuntimeContainerd}},
		{"weft-test-docker/docker/" + id, Cgroup{ContainerID: id, Runtime: RuntimeDocker}},
	}
	for _, mount := range mounts {
		for _, s := range shapes {
			t.Run(filepath.Base(mount)+"/"+strings.SplitN(s.rel, "/", 2)[0], func(t *testing.T) {
				dir := filepath.Join(mount, s.rel)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Skipf("cannot create a cgroup under %s: %v", mount, err)
				}
				t.Cleanup(func() { removeCgroupTree(mount, s.rel) })
				cmd := exec.Command("sleep", "30")
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				pid := cmd.Process.Pid
				if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
					t.Fatalf("move pid %d into %s: %v", pid, dir, err)
				}
				c := NewCgroupCache(CgroupConfig{})
				if got := c.Lookup(uint32(pid)); got != s.want {
					b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
					t.Errorf("Lookup = %+v, want %+v; /proc/%d/cgroup:\n%s", got, s.want, pid, b)
				}
				// Move it back out so the directories can go.
				_ = os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
			})
		}
	}
}

// removeCgroupTree removes the directories of rel under mount, innermost
// first (cgroup directories go with rmdir only).
func removeCgroupTree(mount, rel string) {
	parts := strings.Split(rel, "/")
	for i := len(parts); i > 0; i-- {
		_ = os.Remove(filepath.Join(mount, filepath.Join(parts[:i]...)))
	}
}

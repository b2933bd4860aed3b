package k8smeta

import (
	"strings"
)

// Runtime names, as container.runtime.name carries them. RuntimeUnknown is
// a container found by its id alone (a bare 64-hex cgroup under kubepods,
// which every CRI runtime with the cgroupfs driver makes).
const (
	RuntimeUnknown    = ""
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
)

// Cgroup is what a process's cgroup path says about its container.
type Cgroup struct {
	// ContainerID is the runtime's 64-hex container id, lowercase; empty
	// for a process outside any container weft recognises.
	ContainerID string
	// PodUID is the pod's UID in its API form (dashes, not the
	// underscores systemd slice names use); empty outside Kubernetes.
	PodUID string
	// Runtime is the container runtime the path names, when it names one.
	Runtime string
}

// scopePrefixes are the systemd scope (or cgroupfs directory) prefixes
// before a container id, and the runtime each one means.
var scopePrefixes = []struct{ prefix, runtime string }{
	{"docker-", RuntimeDocker},
	{"cri-containerd-", RuntimeContainerd},
	{"crio-", RuntimeCRIO},
	{"libpod-", RuntimePodman},
}

// ParseCgroup reads the content of /proc/PID/cgroup: cgroup v2
// ("0::/path"), v1 ("4:memory:/path") or the hybrid of both. The first
// line whose path names a container decides; a pod UID is taken from the
// same line. Any input is accepted: what is not understood is skipped.
func ParseCgroup(content string) Cgroup {
	for len(content) > 0 {
		line := content
		if i := strings.IndexByte(content, '\n'); i >= 0 {
			line, content = content[:i], content[i+1:]
		} else {
			content = ""
		}
		// hierarchy-ID:controller-list:cgroup-path; the path may itself
		// hold colons, so split on the first two only.
		i := strings.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := strings.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		if cg := ParseCgroupPath(line[i+1+j+1:]); cg.ContainerID != "" {
			return cg
		}
	}
	return Cgroup{}
}

// ParseCgroupPath finds the container in one cgroup path, such as
//
//	/docker/<id>
//	/system.slice/docker-<id>.scope
//	/kubepods/besteffort/pod<uid>/<id>
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
//	/kubepods.slice/kubepods-pod<uid_>.slice/crio-<id>.scope
//	/machine.slice/libpod-<id>.scope
//
// The innermost container wins (Docker in Docker nests them). Monitor
// scopes (crio-conmon-<id>, libpod-conmon-<id>) are not containers.
func ParseCgroupPath(path string) Cgroup {
	var cg Cgroup
	rest := path
	for rest != "" {
		// Walk the segments from the innermost out.
		seg := rest
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[i+1:], rest[:i]
		} else {
			rest = ""
		}
		if cg.ContainerID == "" {
			if id, runtime, ok := containerSegment(seg); ok {
				cg.ContainerID, cg.Runtime = id, runtime
				if i := strings.IndexByte(seg, ':'); i >= 0 {
					// "<pod slice>:cri-containerd:<id>" names its pod too.
					if uid, ok := podSegment(seg[:i]); ok {
						cg.PodUID = uid
					}
				}
				if runtime == RuntimeUnknown && rest != "" {
					// A bare id: the parent directory may name the runtime
					// (cgroupfs Docker is /docker/<id>).
					parent := rest[strings.LastIndexByte(rest, '/')+1:]
					if parent == "docker" {
						cg.Runtime = RuntimeDocker
					}
				}
				continue
			}
		}
		if cg.ContainerID != "" && cg.PodUID == "" {
			if uid, ok := podSegment(seg); ok {
				cg.PodUID = uid
			}
		}
	}
	if cg.ContainerID == "" {
		return Cgroup{}
	}
	return cg
}

// containerSegment reports whether one path segment names a container.
// containerd's systemd driver may leave "<slice>:cri-containerd:<id>" in a
// segment; its last colon-separated field is then the one looked at.
func containerSegment(seg string) (id, runtime string, ok bool) {
	if i := strings.LastIndexByte(seg, ':'); i >= 0 {
		// "kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>"
		prefix := seg[:i]
		seg = seg[i+1:]
		if isContainerID(seg) {
			runtime := RuntimeUnknown
			if strings.HasSuffix(prefix, ":cri-containerd") {
				runtime = RuntimeContainerd
			} else if strings.HasSuffix(prefix, ":crio") {
				runtime = RuntimeCRIO
			} else if strings.HasSuffix(prefix, ":docker") {
				runtime = RuntimeDocker
			}
			return seg, runtime, true
		}
		return "", "", false
	}
	if isContainerID(seg) {
		return seg, RuntimeUnknown, true
	}
	seg = strings.TrimSuffix(seg, ".scope")
	for _, p := range scopePrefixes {
		if s, found := strings.CutPrefix(seg, p.prefix); found {
			if isContainerID(s) {
				return s, p.runtime, true
			}
			return "", "", false
		}
	}
	return "", "", false
}

// podSegment reports whether a segment is a pod's cgroup: "pod<uid>"
// (cgroupfs) or "[<root>-]kubepods[-<qos>]-pod<uid with _>.slice" (systemd).
func podSegment(seg string) (string, bool) {
	var s string
	switch {
	case strings.HasPrefix(seg, "pod"):
		s = seg[len("pod"):]
	case strings.HasSuffix(seg, ".slice") && strings.Contains(seg, "kubepods"):
		// kind and other nested kubelets prefix their root: kubelet-kubepods-...
		s = strings.TrimSuffix(seg, ".slice")
		i := strings.LastIndex(s, "-pod")
		if i < 0 {
			return "", false
		}
		s = s[i+len("-pod"):]
	default:
		return "", false
	}
	if !isUID(s) {
		return "", false
	}
	if strings.IndexByte(s, '_') >= 0 {
		s = strings.ReplaceAll(s, "_", "-")
	}
	return strings.ToLower(s), true
}

// isContainerID reports whether s is 64 hex digits. Shorter hex names
// (this machine's own 32-hex memory cgroups, systemd's unit hashes) are
// not container ids.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isUID reports whether s is a UUID in 8-4-4-4-12 form, with '-' or '_'
// between the groups.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' && c != '_' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

package k8smeta

import (
	"net/netip"

	"go.opentelemetry.io/otel/attribute"
)

// Enrich is Lookup in the shape procmeta.Enricher asks for: pid's resource
// attributes, its service name by ServiceName's precedence, and whether
// the answer is final. It is not final while a source that is there could
// still say more: the Docker client has not answered for the container,
// or the informers do not (yet) know its pod. Outside any container the
// answer is final at once.
func (r *Resolver) Enrich(pid uint32) ([]attribute.KeyValue, string, bool) {
	m := r.Lookup(pid)
	return m.Attributes(), m.ServiceName(), r.settled(m)
}

// Exec says pid exec'd: its cgroup is read again on the next Lookup (a
// runtime moves its process into the container's cgroup between the exec
// of its init and that of the entrypoint).
func (r *Resolver) Exec(pid uint32) { r.cgroups.Reset(pid) }

// settled reports whether no later Lookup can know more about m's
// container than m does.
func (r *Resolver) settled(m Meta) bool {
	if m.ContainerID == "" {
		return true
	}
	if r.kube != nil && (m.Pod == nil || m.PodContainer.Name == "") {
		return false
	}
	if r.docker != nil && m.Container.ID == "" && asksDocker(m.Runtime) && !r.docker.settled(m.ContainerID) {
		return false
	}
	return true
}

// asksDocker reports whether Lookup asks the Docker client about a
// container of this runtime.
func asksDocker(runtime string) bool {
	switch runtime {
	case RuntimeContainerd, RuntimeCRIO, RuntimePodman:
		return false
	}
	return true
}

// settled reports whether the daemon has answered for id for good: with
// the container, or that it does not know it. Ids Lookup never fetches
// are settled too.
func (d *Docker) settled(id string) bool {
	if !isContainerID(id) {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.containers[id]
	return e != nil && (e.state == fetchDone || e.state == fetchNotFound)
}

// PeerName names the service behind a remote address for a client span's
// service.peer.name: the Kubernetes Service whose cluster IP or endpoints
// include ip, else, for a pod of this node, its app.kubernetes.io/name
// label or its owner's name. "" when Kubernetes metadata is off or ip is
// none of these.
func (r *Resolver) PeerName(ip netip.Addr) string {
	if r.kube == nil || !ip.IsValid() {
		return ""
	}
	if svc, ok := r.kube.ServiceByIP(ip); ok && svc.Name != "" {
		return svc.Name
	}
	p, ok := r.kube.PodByIP(ip)
	if !ok {
		return ""
	}
	if p.AppName != "" {
		return p.AppName
	}
	return r.kube.Workload(p).Name()
}
